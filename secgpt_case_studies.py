"""Runs in: hub.

The case studies on SecGPT (the original four and the three ACE attacks):
`python secgpt_case_studies.py [--case N | --all | --compare] [--isolation faithful|strict]`.
"""

import sys

from evaluation.case_study_cli import main

if __name__ == "__main__":
    sys.exit(main("SecGPT"))
