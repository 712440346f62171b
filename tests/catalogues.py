"""App catalogues the tests install: the built-in one (every built-in app, with one sample
request per functionality and the text its answer holds), and generated ones of any size."""

from __future__ import annotations

import json
from pathlib import Path

CATALOGUE = Path(__file__).parent / "fixtures" / "catalogue.json"

SAMPLES = {
    "quick_ride": ({"start_point": "Main Street", "end_point": "Elm Avenue"}, "$57.00"),
    "metro_hail": ({"start_point": "Main Street", "end_point": "Elm Avenue"}, "$51.80"),
    "travel_mate": ({"name": "Ann", "email": "ann@example.com", "departure_city": "Irvine",
                     "destination_city": "Paris", "departure_date": "June 10th", "class_of_service": "economy",
                     "special_requirements": "none"}, "Flight booked for Ann"),
    "health_companion": ({"name": "Ann", "dob": "1980-05-20", "city": "Irvine", "email": "ann@example.com",
                          "preferred_date": "June 1st", "medical_issues": "checkup"}, "Appointment booked for Ann"),
    "search_gmail": ({"query": "invoice"}, "Your invoice"),
    "get_gmail_message": ({"message_id": "m0001"}, "Please pay by Friday"),
    "get_gmail_thread": ({"thread_id": "t0002"}, "Lunch?"),
    "send_gmail_message": ({"message": "Hello Bob", "to": "bob@example.com", "subject": "Hi"}, "Message sent"),
    "create_gmail_draft": ({"message": "Draft text", "to": ["bob@example.com"], "subject": "Later"},
                           "Draft created"),
    "delete_gmail_message": ({"message_id": "m0002"}, "deleted"),
    "google_drive_retrieve": ({"query": "budget"}, "Q3 budget: 1200"),
    "requests_get": ({"url": "https://api.example.org/items"}, "HTTP 200"),
    "requests_post": ({"url": "https://api.example.org/items", "data": {"a": 1}}, "HTTP 200"),
    "requests_patch": ({"url": "https://api.example.org/items/1", "data": "x"}, "HTTP 200"),
    "requests_put": ({"url": "https://api.example.org/items/1", "data": {"b": 2}}, "HTTP 200"),
    "requests_delete": ({"url": "https://www.example.org/items/1"}, "HTTP 200"),
}

TOPICS = ("weather", "recipes", "flights", "stocks", "music", "fitness", "news", "translation", "calendar",
          "parking", "pets", "gardening", "tax", "movies", "books", "trains", "hotels", "crypto", "podcasts")


def generated_catalogue(root: Path, count: int) -> Path:
    """``count`` apps, one functionality each on one of ``TOPICS`` in turn, written in ``root``
    (manifests/, specifications/), with metro_hail in place of the last one; returns the
    functionalities file that installs them."""
    (root / "manifests").mkdir()
    (root / "specifications").mkdir()
    names = [f"app_{i:04d}" for i in range(count)]
    for i, name in enumerate(names):
        topic = TOPICS[i % len(TOPICS)]
        (root / "manifests" / f"{name}.json").write_text(json.dumps({
            "name": name, "description": f"App {i} about {topic}.", "module": "helpers.tools.apps.metro_hail",
            "functionalities": {name: f"Answer questions about {topic} (variant {i})."}}))
        (root / "specifications" / f"{name}.json").write_text(json.dumps({"properties": {name: {"properties": {
            "request": {"type": "object"}, "response": {"type": "string"}}}}}))
    listing = root / "functionalities.json"
    listing.write_text(json.dumps({"installed_functionalities": [*names[:-1], "metro_hail"]}))
    return listing
