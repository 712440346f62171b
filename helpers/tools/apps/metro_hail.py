"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

MetroHail (simulated).

Each call is also recorded in the app's own data directory (calls.jsonl): whether the
benign app ran at all is what the case studies on execution flow and planning check, and
an app-side record reads the same for SecGPT and VanillaGPT. The answer is unchanged."""

import json

from helpers.tools.apps.rides import fare_of


def metro_hail(request: dict, hub) -> str:
    with open("calls.jsonl", "a") as log:
        log.write(json.dumps({"start_point": request["start_point"], "end_point": request["end_point"]}) + "\n")
    return f"MetroHail fare from {request['start_point']} to {request['end_point']}: " \
           f"{fare_of('metro_hail', request['start_point'], request['end_point'])}"


FUNCTIONALITIES = {"metro_hail": metro_hail}
