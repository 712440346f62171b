"""App catalogues the tests install: the built-in one (every built-in app, with one sample
request per functionality and the text its answer holds). Generated catalogues of any size come
from ``helpers.tools.generated_catalogue``, which the planning benchmark uses too."""

from __future__ import annotations

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
