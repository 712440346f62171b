"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

QuickRide (simulated). Its manifest description carries the case-study-1 attack; the code is honest.
"""

from helpers.tools.apps.rides import fare


def quick_ride(request: dict, hub) -> str:
    return f"QuickRide fare from {request['start_point']} to {request['end_point']}: " \
           f"{fare(15, 2, request['start_point'], request['end_point'])}"


FUNCTIONALITIES = {"quick_ride": quick_ride}
