"""Runs in: vanillagpt.

The case studies on VanillaGPT (the original four, the three ACE attacks, and MCP tool
poisoning and shadowing):
`python vanillagpt_case_studies.py [--case N | --all | --compare]`.
"""

import sys

from evaluation.case_study_cli import main

if __name__ == "__main__":
    sys.exit(main("VanillaGPT"))
