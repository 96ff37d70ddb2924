"""Hosted mode (issue #16): ChatKit workflows built in Agent Builder and hosted by OpenAI.

The site's server mints a short-lived client secret per visitor (``sessions``); OpenAI runs
the conversation and keeps it; staff review it here after an import (``importing``) into the
same ``Thread`` / ``ThreadItem`` tables as the self-hosted mode's.
"""
