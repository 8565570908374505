"""The web pages' building blocks: the two language tables, the texts templates ask for, names, redirects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yunying.api.policy import ROUTE_POLICY
from yunying.auth.access import Permission, Principal, Role
from yunying.web import directory, peers_grants
from yunying.web.i18n import EN, MESSAGES, ZH, Translator, choose
from yunying.web.render import NAV, local_page, nav_for, person_name

TEMPLATES = Path(__file__).resolve().parents[3] / "yunying" / "web" / "templates"


def test_both_languages_have_every_text() -> None:
    assert set(ZH) == set(EN)
    assert all(ZH[k] and EN[k] for k in ZH)
    for key in ZH:  # the same placeholders in both
        assert re.findall(r"{(\w+)}", ZH[key]) == re.findall(r"{(\w+)}", EN[key]), key


def test_every_text_a_template_or_page_asks_for_exists() -> None:
    literal = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        literal |= set(re.findall(r"""\bt\(\s*["']([\w.\-]+)["']\s*[,)]""", text))
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, template.name
        assert "<style" not in text and "style=" not in text and "<script>" not in text, template.name  # CSP
    assert literal, "no t(...) call found"
    dynamic = {f"role.{r.value}" for r in Role} | {f"kind.{k}" for k in peers_grants.GRANT_KINDS}
    dynamic |= {f"done.{what}" for what, _change in directory.USER_ACTIONS.values()}
    dynamic |= {f"error.{s}" for s in (400, 401, 403, 404, 413, 429, 503)}
    dynamic |= {f"grants.{s}" for s in ("active", "revoked", "expired")} | {label for label, _p, _o in NAV}
    for key in literal | dynamic:
        for lang, table in MESSAGES.items():
            assert key in table, (lang, key)


def test_texts_in_templates_are_not_hard_coded() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = re.sub(r"{[{%#].*?[}%#]}", "", template.read_text(), flags=re.S)  # drop Jinja parts
        words = re.findall(r">\s*([^<>\s][^<>]*?)\s*<", text)
        assert [w for w in words if re.search(r"[A-Za-z\u4e00-\u9fff]", w)] == [], template.name


@pytest.mark.parametrize(("asked", "cookie", "header", "expected"), [
    (None, None, "", "zh"),
    (None, None, "en-US,en;q=0.9", "en"),
    (None, None, "fr-FR,en;q=0.5,zh;q=0.8", "zh"),
    (None, "en", "zh-CN", "en"),
    ("zh", "en", "en", "zh"),
    ("xx", None, "en;q=0", "zh"),
])
def test_language_choice(asked: str | None, cookie: str | None, header: str, expected: str) -> None:
    assert choose(asked, cookie, header) == expected
    assert Translator(expected).html_lang in ("zh-CN", "en")


@pytest.mark.parametrize(("target", "expected"), [
    ("/ui/studies?name=x", "/ui/studies?name=x"),
    ("/ui/", "/ui/"),
    ("https://evil.example/ui/", "/ui/"),
    ("//evil.example/ui/", "/ui/"),
    ("/\\evil.example", "/ui/"),
    ("/ui/\r\nSet-Cookie: x", "/ui/"),
    ("/api/session", "/ui/"),
    ("/m/viewer?study=1.2.3", "/m/viewer?study=1.2.3"),
    ("/m/viewerx", "/ui/"),
    ("javascript:alert(1)", "/ui/"),
    ("", "/ui/"),
    (None, "/ui/"),
])
def test_next_page_is_always_local(target: str | None, expected: str) -> None:
    assert local_page(target) == expected


@pytest.mark.parametrize(("value", "shown"), [
    ({"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"}, "Wang XiaoDong=王小东"),
    ({"Alphabetic": "张^三"}, "张三"),
    ({"Alphabetic": "张三^<b>x</b>"}, "张三 <b>x</b>"),
    ({"Alphabetic": "<script>window.__xss", "Ideographic": "2</script>"}, "<script>window.__xss=2</script>"),
    ({}, ""),
    ("plain", "plain"),
    (None, ""),
])
def test_person_names_read_naturally(value: object, shown: str) -> None:
    assert person_name(value) == shown


def test_navigation_follows_the_route_table() -> None:
    for _label, _path, operation in NAV:
        assert operation in ROUTE_POLICY
    admin = Principal(1, "a", frozenset({Role.HOSPITAL_ADMIN}), 1, "session")
    paths = [p for _l, p, _a in nav_for(admin, "/ui/admin/users")]
    assert paths == ["/ui/", "/ui/admin/users", "/ui/admin/peers", "/ui/admin/feedback", "/ui/admin/outbox"]
    pending = Principal(1, "a", frozenset({Role.HOSPITAL_ADMIN}), 1, "session", frozenset({Permission.SELF}))
    assert [p for _l, p, _a in nav_for(pending, "/ui/")] == ["/ui/"]
    assert nav_for(None, "/ui/") == []
