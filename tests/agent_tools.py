"""Tools for the agent tests: plain functions, turned into function tools by the settings."""

CALLS: list[str] = []


def get_weather(city: str) -> str:
    """Return the weather for a city."""
    CALLS.append(city)
    return f"Sunny and 21°C in {city}"


def lookup_order(number: int) -> str:
    """Look up an order by number."""
    return f"Order {number}: shipped"


def agent_for(context):
    """An agent that depends on the request's user (the README's example)."""
    from agents import Agent

    return Agent(
        name="Assistant",
        model="readme-model",
        instructions=f"The user's name is {context.user.username}.",
        tools=[__import__("agents").function_tool(lookup_order)],
    )


def chat_completions_agent(context):
    """An agent on a Chat Completions model (its messages come with the SDK's placeholder id)."""
    from agents import Agent, OpenAIChatCompletionsModel, function_tool

    from django_chatkit.openai_client import get_openai_client

    model = OpenAIChatCompletionsModel(model="answer-model", openai_client=get_openai_client())
    return Agent(name="Chat", model=model, tools=[function_tool(get_weather)])
