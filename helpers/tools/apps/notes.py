"""Runs in: spoke, vanillagpt (app code: in its own spoke, or in VanillaGPT's one process).

notes (simulated): keeps short notes in its own data directory. The flow tests install it
as a user-added app (manifest and specification in tests/fixtures/apps/)."""


def save_note(request: dict, hub) -> str:
    with open("notes.txt", "a") as f:
        f.write(request["text"] + "\n")
    return f"Saved a note of {len(request['text'])} characters."


FUNCTIONALITIES = {"save_note": save_note}
