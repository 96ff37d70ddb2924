"""Translations (issue #13, item 6): the Spanish catalogue is complete, compiled and current, and
a Spanish admin, widget and endpoint speak Spanish.

The test settings have no LocaleMiddleware, so the language is chosen with
``translation.override``: the test client handles each request in this thread, under it.
"""

from __future__ import annotations

import ast
import gettext as gettext_module
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone, translation

import django_chatkit
from django_chatkit import models
from django_chatkit.quotas import QuotaUnavailable
from django_chatkit.store import locked_refusal

PACKAGE = Path(django_chatkit.__file__).parent
CATALOGUE = PACKAGE / "locale" / "es" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%%")


# -- the catalogue ---------------------------------------------------------------------------


def parse_po(path: Path) -> list[dict[str, Any]]:
    """The entries of a .po file: msgid, msgid_plural, msgstr / msgstr[n], and flags."""
    entries: list[dict[str, Any]] = []
    entry: dict[str, Any] | None = None
    key = ""
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry = None
            continue
        if entry is None:
            entry = {"flags": set()}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[key] += ast.literal_eval(line)
        else:
            key, _, value = line.partition(" ")
            entry[key] = ast.literal_eval(value)
    return entries


def translations(entry: dict[str, Any]) -> list[str]:
    if "msgid_plural" in entry:
        return [entry[key] for key in sorted(entry) if key.startswith("msgstr[")]
    return [entry["msgstr"]]


ENTRIES = parse_po(CATALOGUE / "django.po")
MESSAGES = [entry for entry in ENTRIES if entry["msgid"]]


def test_the_catalogue_is_complete_and_nothing_is_fuzzy():
    header = ENTRIES[0]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert "Language: es\n" in header["msgstr"]
    assert "Plural-Forms: nplurals=2; plural=(n != 1);\n" in header["msgstr"]
    assert len(MESSAGES) > 300
    untranslated = [e["msgid"] for e in MESSAGES if not all(translations(e))]
    assert untranslated == []
    assert [e["msgid"] for e in MESSAGES if "fuzzy" in e["flags"]] == []
    for entry in MESSAGES:
        if "msgid_plural" in entry:
            assert len(translations(entry)) == 2, entry["msgid"]


def test_translations_keep_every_placeholder():
    for entry in MESSAGES:
        sources = [entry["msgid"], entry.get("msgid_plural", entry["msgid"])]
        wanted = {tuple(sorted(PLACEHOLDER.findall(text))) for text in sources}
        for text in translations(entry):
            # The singular may leave the count out ("1 voto" could say "un voto"); none does.
            assert tuple(sorted(PLACEHOLDER.findall(text))) in wanted, (entry["msgid"], text)


def test_the_compiled_catalogue_matches_the_po():
    """The .mo ships (an install has no gettext to compile it): it must say what the .po says."""
    with (CATALOGUE / "django.mo").open("rb") as mo:
        compiled = gettext_module.GNUTranslations(mo)
    for entry in MESSAGES:
        if "msgid_plural" in entry:
            singular, plural = translations(entry)
            assert compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1) == singular
            assert compiled.ngettext(entry["msgid"], entry["msgid_plural"], 5) == plural
        else:
            assert compiled.gettext(entry["msgid"]) == entry["msgstr"], entry["msgid"]
    # Nothing compiled that the .po no longer has (a .po edited, the .mo not rebuilt): one key
    # per singular, one per plural form, and the header.
    forms = sum(len(translations(entry)) for entry in MESSAGES)
    assert len(compiled._catalog) == forms + 1  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (xgettext)")
def test_the_catalogue_holds_every_string_of_the_package(tmp_path):
    """makemessages over a copy of the package finds no msgid the catalogue lacks: a string
    marked for translation since the catalogue was made would ship in English."""
    copy = tmp_path / "django_chatkit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    (copy / "locale" / "es" / "LC_MESSAGES" / "django.po").unlink()
    subprocess.run(
        ["django-admin", "makemessages", "-l", "es", "--settings=tests.settings"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**_env(), "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    fresh = {e["msgid"] for e in parse_po(copy / "locale/es/LC_MESSAGES/django.po")}
    assert fresh - {e["msgid"] for e in ENTRIES} == set()


def _env() -> dict[str, str]:
    import os
    import sys

    # The django-admin of the interpreter running the tests.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


# -- a Spanish admin -------------------------------------------------------------------------


@pytest.fixture
def root(db) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def locked(alice) -> models.Thread:
    at = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)
    thread = models.Thread.objects.create(
        user=alice,
        title="Capitals",
        created_at=at,
        updated_at=at,
        status=models.ThreadStatus.LOCKED,
        status_reason="Spam",
        moderator_note="reported twice",
    )
    models.Feedback.objects.create(thread=thread, item_id="msg_1", kind="negative")
    models.Run.objects.create(
        thread=thread,
        user=alice,
        kind=models.RunKind.ANSWER,
        model="gpt-4.1",
        status=models.RunStatus.FAILED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        input_tokens=10,
        output_tokens=5,
    )
    return thread


def page(client: Client, url: str, method: str = "get", **data: Any) -> str:
    with translation.override("es"):
        response = getattr(client, method)(url, data)
    assert response.status_code == 200, response
    return str(response.content.decode())


def assert_spanish(html: str, spanish: list[str], english: list[str]) -> None:
    missing = [text for text in spanish if text not in html]
    assert missing == []
    left = [text for text in english if text in html]
    assert left == []


def test_threads_changelist_in_spanish(root, locked):
    html = page(root, reverse("admin:django_chatkit_thread_changelist"))
    assert_spanish(
        html,
        [
            "Bloquear las conversaciones seleccionadas",
            "Poner en retención legal las conversaciones seleccionadas",
            "Id. de la conversación (exacto)",
            "Valoraciones negativas",
            "tipo de propietario",  # Django: "Por tipo de propietario"
            "Visitante anónimo",
            "Bloqueada",
        ],
        [
            "Lock selected threads",
            "Thread id (exact)",
            "Negative feedback",
            "Anonymous visitor",
            ">Locked<",
        ],
    )


def test_a_locked_threads_page_in_spanish(root, locked):
    html = page(root, reverse("admin:django_chatkit_thread_change", args=[locked.pk]))
    assert_spanish(
        html,
        [
            "Moderación",
            "Datos técnicos",
            "Mensaje para el usuario",
            "Nota interna",
            "Dominios de imágenes permitidos",
            "Aún no hay mensajes.",
            "Llamadas al modelo",
        ],
        [
            "Moderation",
            "Technical",
            "Message to the user",
            "Internal note",
            "Allowed image domains",
            "No messages yet.",
        ],
    )


def test_the_lock_confirmation_page_in_spanish(root, locked):
    html = page(
        root,
        reverse("admin:django_chatkit_thread_changelist"),
        method="post",
        action="lock_threads",
        _selected_action=[locked.pk],
        index="0",
    )
    assert_spanish(
        html,
        [
            "Bloquear conversaciones",
            "Las conversaciones bloqueadas son de solo lectura",
            "1 conversación seleccionada",
            "Mensaje para el usuario (público)",
            "Nota interna (solo para el personal)",
            'value="Bloquear"',
        ],
        # "No, take me back" is also Django admin's: its own catalogue, listed first, translates it.
        ["Lock threads", "selected thread", "(public)", "(staff only)", "No, take me back"],
    )


def test_the_feedback_queue_in_spanish(root, locked):
    html = page(root, reverse("admin:django_chatkit_feedback_changelist"))
    assert_spanish(
        html,
        [
            "Marcar como revisados los votos seleccionados…",
            "Texto valorado",
            "Mensaje del usuario anterior",
            "Sin revisar",
            "(elemento eliminado)",
        ],
        ["Mark selected votes reviewed", "Rated text", "Not reviewed", "(item deleted)"],
    )


def test_the_usage_page_in_spanish(root, locked):
    html = page(root, "/admin/django_chatkit/run/usage/")
    assert_spanish(
        html,
        [
            "Resumen de uso",
            "Los 30 días en total",
            "Turnos por día",
            "Tasa de fallos por día",
            "Cifras en forma de tabla",
            "Usuarios con más tokens",
        ],
        ["Usage overview", "The 30 days in all", "Turns per day", "Figures as a table"],
    )


# -- the widget and the endpoint's messages --------------------------------------------------


def test_the_widgets_fallback_message_is_spanish(alice):
    request = RequestFactory().get("/")
    request.user = alice
    with translation.override("es"):
        html = Template("{% load chatkit %}{% chatkit %}").render(Context({"request": request}))
    assert 'data-chatkit-unavailable="No se ha podido cargar el chat: su script' in html
    assert "<noscript>El chat necesita JavaScript.</noscript>" in html
    assert "could not be loaded" not in html


def test_refusals_the_user_reads_are_spanish():
    with translation.override("es"):
        refusal = locked_refusal(translation.gettext("it cannot be renamed"), "Spam")
        quota = QuotaUnavailable()
    assert refusal.message == (
        "Esta conversación está bloqueada: no se le puede cambiar el nombre. Motivo: Spam"
    )
    assert refusal.code == "thread_locked"  # codes are not translated
    assert quota.message.startswith("El chat no está disponible por un momento")
    # And in English, as before.
    assert locked_refusal("it cannot be renamed", None).message == (
        "This conversation is locked: it cannot be renamed."
    )
