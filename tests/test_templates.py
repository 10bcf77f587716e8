"""lib/templates.py (escaping, the tags, the form helpers, pagination) and lib/payment_uri.py
(EIP-681 URIs and their QR codes). Pure functions: no database."""
import urllib.parse

import pytest

from lib import payment_uri, templates
from lib.templates import Markup, TemplateError, escape, render_string


def test_every_value_is_escaped_unless_markup():
    out = render_string("<p title='{{ a }}'>{{ a }}</p>{{ b }}{{ c }}{{ n }}",
                        a="\"'><script>x</script>&", b=Markup("<b>ok</b>"), c=None, n=0)
    assert out == ("<p title='&quot;&#x27;&gt;&lt;script&gt;x&lt;/script&gt;&amp;'>"
                   "&quot;&#x27;&gt;&lt;script&gt;x&lt;/script&gt;&amp;</p><b>ok</b>0")
    assert isinstance(out, Markup)


def test_markup_concatenation_escapes_the_plain_side():
    assert Markup("<b>") + "<i>" == "<b>&lt;i&gt;"
    assert "<i>" + Markup("<b>") == "&lt;i&gt;<b>"
    assert Markup("<br>").join(["<a>", Markup("<b>")]) == "&lt;a&gt;<br><b>"
    assert escape(escape("<")) == "&lt;"  # no double escaping


def test_if_for_set_and_attribute_access_on_rows():
    text = ("{% for i, r in enumerate(rows) %}{% if r.items > 1 %}{{ i }}:{{ r.name }}{% elif r.items %}one"
            "{% else %}none{% endif %};{% endfor %}{% set total = sum(r['items'] for r in rows) %}={{ total }}"
            "{# hidden #}")
    rows = [{"name": "<a>", "items": 3}, {"name": "b", "items": 1}, {"name": "c", "items": 0}]
    assert render_string(text, rows=rows) == "0:&lt;a&gt;;one;none;=4"


def test_block_tags_on_their_own_lines_leave_no_blank_lines():
    text = "<ul>\n{% for x in xs %}\n<li>{{ x }}</li>\n{% endfor %}\n</ul>"
    assert render_string(text, xs=[1, 2]) == "<ul>\n<li>1</li>\n<li>2</li>\n</ul>"


def test_empty_branches_compile():
    assert render_string("{% if x %}{% else %}no{% endif %}{% for y in [] %}{% endfor %}", x=True) == ""


@pytest.mark.parametrize("text", ["{% if x %}", "{% endif %}", "{% for x %}{% endfor %}", "{% frob %}",
                                  "{{ }}", "{{ 1 + }}", "{% else %}", "{% for x in y %}{% endif %}",
                                  "{% include x %}", "{% include '../etc/passwd' %}"])
def test_malformed_templates_are_errors(text):
    with pytest.raises(TemplateError):
        render_string(text, x=1, y=[])


def test_a_missing_name_is_an_error_not_a_blank():
    with pytest.raises(NameError):
        render_string("{{ nope }}")
    with pytest.raises(AttributeError):
        render_string("{{ row.nope }}", row={"a": 1})


def test_include_shares_names_but_not_assignments(tmp_path, monkeypatch):
    monkeypatch.setattr(templates, "TEMPLATE_DIR", str(tmp_path))
    (tmp_path / "part.html").write_text("[{{ x }}{% set x = 'inner' %}]")
    (tmp_path / "page.html").write_text("{% include 'part.html' %}{{ x }}")
    assert templates.render("page.html", x="<o>") == "[&lt;o&gt;]&lt;o&gt;"
    with pytest.raises(TemplateError):
        templates.render("../page.html")


def test_user_text_is_never_compiled():
    # A value that looks like template syntax is just text.
    assert render_string("{{ v }}", v="{{ 7 * 7 }}{% if 1 %}") == "{{ 7 * 7 }}{% if 1 %}"


def test_form_helpers_show_values_and_field_errors_escaped():
    html = templates.field("name", "Name <1>", form={"name": '"><x>'}, errors={"name": "bad <y>"}, maxlength=5)
    assert 'value="&quot;&gt;&lt;x&gt;"' in html
    assert '<label for="f-name">Name &lt;1&gt;</label>' in html
    assert 'aria-invalid="true"' in html and 'class="field has-error"' in html
    assert '<p class="field-error" id="name-error">bad &lt;y&gt;</p>' in html
    assert 'maxlength="5"' in html
    assert 'value=' not in templates.field("password", "P", form={"password": "secret"}, type="password")
    sel = templates.select("t", "T", [("1", "a<"), ("2", "b")], value="2", blank="-")
    assert '<option value="2" selected>b</option>' in sel and "a&lt;" in sel
    area = templates.textarea("d", "D", value="</textarea><script>")
    assert "&lt;/textarea&gt;&lt;script&gt;" in area
    assert templates.checkbox("c", "C", checked=True).count(" checked") == 1
    assert templates.hidden("csrf_token", 'a"b') == '<input type="hidden" name="csrf_token" value="a&quot;b">'


def test_helpers():
    assert templates.money("1500000000000000000", 18) == "1.5"
    assert templates.money(123456789, 6, places=2) == "123.45"
    assert templates.money("0", 18) == "0"
    assert templates.usd("20") == "20.00" and templates.usd("1234.5") == "1,234.50"
    assert templates.short("0x" + "ab" * 32, 10) == "0xababa…babab"
    assert templates.short("0x1234", 10) == "0x1234"
    assert templates.query(a=1, b=None, c="x y") == "?a=1&c=x+y"
    assert templates.urlencode("a/b?c") == "a%2Fb%3Fc"
    assert templates.safe_url("javascript:alert(1)") == "#"
    assert templates.safe_url("//evil.example") == "#"
    assert templates.safe_url("/ok") == "/ok" and templates.safe_url("https://x.org/") == "https://x.org/"
    assert templates.attrs(class_="a", data_x='"', hidden=True, gone=None) == ' class="a" data-x="&quot;" hidden'


def test_pager_links_keep_the_query():
    rows = list(range(21))
    pager = templates.Pager("/marketplace.php", {"q": "a b", "offset": "20"}, 20, 20, rows)
    assert pager.has_next and pager.has_prev and len(pager.rows) == 20 and pager.page == 2
    assert pager.next_url == "/marketplace.php?q=a+b&offset=40"
    assert pager.prev_url == "/marketplace.php?q=a+b"
    last = templates.Pager("/x", {}, 20, 0, list(range(20)))
    assert not last.has_next and not last.has_prev


ESCROW = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
TOKEN = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def test_eip681_native_and_token():
    assert payment_uri.eip681(ESCROW, 1, 10 ** 16) == f"ethereum:{ESCROW}@1?value=10000000000000000"
    assert payment_uri.eip681(ESCROW, "31337", "123") == f"ethereum:{ESCROW}@31337?value=123"
    assert payment_uri.eip681(ESCROW, 137, 2_500_000, TOKEN) == \
        f"ethereum:{TOKEN}@137/transfer?address={ESCROW}&uint256=2500000"


@pytest.mark.parametrize("args", [("0x12", 1, 1), (ESCROW, 0, 1), (ESCROW, 1, -1), (ESCROW, 1, "1.5"),
                                  (ESCROW, 1, 1, "0xnope"), ("javascript:alert(1)", 1, 1)])
def test_eip681_refuses_bad_input(args):
    with pytest.raises(ValueError):
        payment_uri.eip681(*args)


def test_qr_code_is_an_svg_data_uri_of_the_uri():
    import segno
    uri = payment_uri.eip681(ESCROW, 1, 10 ** 16)
    data = payment_uri.qr_data_uri(uri)
    assert data.startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(data.split(",", 1)[1])
    assert svg.startswith("<svg") and "<path" in svg
    # The same code segno makes for the URI (error correction M): the symbol encodes it.
    expected = segno.make(uri, error="m", micro=False)
    assert data == expected.svg_data_uri(scale=4, border=4, dark="#000", light="#fff")
    assert expected.designator.endswith("-M")
