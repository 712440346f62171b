"""Runs in: hub.

The case studies on SecGPT (the original four, the three ACE attacks, and MCP tool
poisoning and shadowing):
`python secgpt_case_studies.py [--case N | --all | --compare] [--isolation faithful|strict]`.
"""

import sys

from evaluation.case_study_cli import main

if __name__ == "__main__":
    sys.exit(main("SecGPT"))
