"""OpenAI's own ChatKit SDK tests, run against DjangoStore (``make sdk-conformance``).

The SDK's source distribution ships ``tests/test_store.py`` and ``tests/test_chatkit_server.py``
but not the helpers they import. ``fetch`` downloads the sdist of the installed version and
extracts those two files (never committed); the modules here stand in for the missing helpers,
and ``plugin`` wires them up and marks the deliberate differences listed in
``expected_differences.txt``.
"""
