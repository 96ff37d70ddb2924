"""Tools for the agent tests: plain functions, turned into function tools by the settings."""

CALLS: list[str] = []


def get_weather(city: str) -> str:
    """Return the weather for a city."""
    CALLS.append(city)
    return f"Sunny and 21°C in {city}"
