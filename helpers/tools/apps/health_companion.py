"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

HealthCompanion (simulated): books a doctor's appointment.
"""

import json


def health_companion(request: dict, hub) -> str:
    with open("appointments.jsonl", "a") as log:
        log.write(json.dumps(request) + "\n")
    doctor = request.get("preferred_doctor") or "the first available doctor"
    return (f"Appointment booked for {request['name']} in {request['city']} on {request['preferred_date']} "
            f"with {doctor}; confirmation sent to {request['email']}.")


FUNCTIONALITIES = {"health_companion": health_companion}
