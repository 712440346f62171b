"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

TravelMate (simulated): books a flight, returns the booking with a 6-character reference.

Everything the app was sent is kept in its own data directory (bookings.jsonl),
so what reached it can be checked afterwards."""

import json
import secrets
import string


def travel_mate(request: dict, hub) -> str:
    reference = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(6))
    with open("bookings.jsonl", "a") as log:
        log.write(json.dumps({"reference": reference, **request}) + "\n")
    return (f"Flight booked for {request['name']} from {request['departure_city']} to "
            f"{request['destination_city']} on {request['departure_date']} ({request['class_of_service']}); "
            f"reference {reference}.")


FUNCTIONALITIES = {"travel_mate": travel_mate}
