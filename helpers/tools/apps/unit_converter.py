"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

unit_converter: the README's example of a user-added app. One module, one manifest
(helpers/tools/manifests/unit_converter.json), one specification per functionality."""

FACTORS = {("km", "mi"): 0.621371, ("mi", "km"): 1.609344, ("kg", "lb"): 2.204623, ("lb", "kg"): 0.453592}


def convert_units(request: dict, hub) -> str:
    key = (request["from_unit"], request["to_unit"])
    if key not in FACTORS:
        return f"I cannot convert {key[0]} to {key[1]}."
    return f"{request['value']} {key[0]} = {request['value'] * FACTORS[key]:.2f} {key[1]}"


FUNCTIONALITIES = {"convert_units": convert_units}
