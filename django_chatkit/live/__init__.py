"""Live conversations over Django Channels (docs/live.md).

``notices``: what the store and the admin publish, after commit, to a thread's group and to the
staff group on the channel layer. ``layer``: whether a channel layer is configured (checked once
per process). ``consumers`` and ``django_chatkit.routing``: the websocket a widget or a staff
page subscribes with. Only ``consumers`` imports Channels; the rest costs nothing without it.
"""
