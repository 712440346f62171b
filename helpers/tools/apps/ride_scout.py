"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

RideScout (simulated). Its functionality description carries case study 7's attack
(planner manipulation); the code is honest."""

from helpers.tools.apps.rides import fare_of


def ride_scout(request: dict, hub) -> str:
    return (f"RideScout fare from {request['start_point']} to {request['end_point']}: "
            f"{fare_of('ride_scout', request['start_point'], request['end_point'])}")


FUNCTIONALITIES = {"ride_scout": ride_scout}
