from django.test import override_settings

from django_chatkit.conf import DEFAULTS, chatkit_settings
from django_chatkit.loading import get_server
from tests.servers import ScriptedServer


def test_defaults_apply_for_missing_keys(settings):
    settings.CHATKIT = {}
    assert chatkit_settings.ALLOW_ANONYMOUS is False
    assert chatkit_settings.MAX_REQUEST_BYTES == DEFAULTS["MAX_REQUEST_BYTES"] == 1024 * 1024
    assert chatkit_settings.SERVER == "django_chatkit.agent_server.AgentChatKitServer"


def test_settings_are_read_at_access_time():
    with override_settings(CHATKIT={"MAX_PAGE_SIZE": 7}):
        assert chatkit_settings.MAX_PAGE_SIZE == 7
    assert chatkit_settings.MAX_PAGE_SIZE == 100


def test_one_server_per_process_reset_when_the_setting_changes():
    server = get_server()
    assert get_server() is server and isinstance(server, ScriptedServer)
    with override_settings(CHATKIT={"SERVER": "django_chatkit.server.DjangoChatKitServer"}):
        other = get_server()
        assert type(other).__name__ == "DjangoChatKitServer"
    assert isinstance(get_server(), ScriptedServer) and get_server() is not server
