"""A small standard-library template engine that escapes every value.

Templates live in `templates/` at the repository root. Syntax:

    {{ expr }}                  the value of a Python expression, HTML-escaped
                                (quote=True) unless it is Markup (see `safe`)
    {% if expr %} {% elif expr %} {% else %} {% endif %}
    {% for a, b in expr %} ... {% endfor %}
    {% set name = expr %}
    {% include "partials/x.html" %}   renders another template with the same names
    {# a comment #}

Expressions are plain Python evaluated over the render context plus the helpers
in HELPERS (escape, safe, urlencode, money, ...). Dicts in the context (database
rows) allow attribute access: `{{ item.name }}` is `item["name"]`. A name missing
from the context is an error (NameError), never a silent blank.

Only template files written by the developers are compiled: user input is only
ever a value, never template text. A newline right after a `{% ... %}` tag is
dropped so block tags on their own lines leave no blank lines behind.

API: `render(name, **ctx) -> Markup`, `render_string(text, **ctx) -> Markup`,
`escape(value) -> Markup`, `safe(text) -> Markup`, `Markup`.
"""
import html
import os
import re
import threading
import urllib.parse
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE_DIR = os.path.join(ROOT, "templates")


class Markup(str):
    """Text that is already HTML: inserted as is. Everything else is escaped."""

    def __add__(self, other):
        return Markup(str.__add__(self, escape(other)))

    def __radd__(self, other):
        return Markup(str.__add__(escape(other), self))

    def join(self, seq):
        return Markup(str.join(self, (escape(s) for s in seq)))

    def __html__(self):
        return self


def escape(value):
    """HTML-escape `value` (quotes included); Markup and None ('') pass through."""
    if value is None:
        return Markup("")
    if isinstance(value, Markup) or hasattr(value, "__html__"):
        return Markup(value.__html__() if not isinstance(value, Markup) else value)
    return Markup(html.escape(str(value), quote=True))


def safe(text):
    """Mark trusted HTML (built by our own code) as safe to insert unescaped."""
    return Markup("" if text is None else text)


# -- attribute access on rows ------------------------------------------------

class Row(dict):
    """A dict whose keys are also attributes (keys win over dict methods)."""

    def __getattribute__(self, name):
        if not name.startswith("_") and dict.__contains__(self, name):
            return _wrap(dict.__getitem__(self, name))
        return dict.__getattribute__(self, name)

    def __getattr__(self, name):
        raise AttributeError(f"template value has no key {name!r}")

    def __getitem__(self, key):
        return _wrap(dict.__getitem__(self, key))

    def get(self, key, default=None):
        return _wrap(dict.get(self, key, default))


def _wrap(value):
    if isinstance(value, dict) and not isinstance(value, Row):
        return Row(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


# -- helpers available in every template --------------------------------------

def urlencode(value):
    """Quote a value for use inside a URL query or path component."""
    return urllib.parse.quote(str(value if value is not None else ""), safe="")


def query(**params):
    """A query string '?a=1&b=2' from keyword arguments (None values are left out)."""
    items = [(k, v) for k, v in params.items() if v is not None and v != ""]
    return "?" + urllib.parse.urlencode(items) if items else ""


def money(base_units, decimals, places=None):
    """Base units (int or decimal string) as a token amount string: exact, no float.

    `places` rounds down to that many decimals for display; trailing zeros are trimmed.
    """
    if base_units is None or base_units == "":
        return ""
    value = Decimal(str(base_units)).scaleb(-int(decimals))
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding="ROUND_DOWN")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def usd(value):
    """A USD decimal string with two places."""
    if value is None or value == "":
        return ""
    return format(Decimal(str(value)).quantize(Decimal("0.01")), ",f")


def short(text, length=10):
    """Shorten long hex strings for display: 0x1234…abcd."""
    text = "" if text is None else str(text)
    if len(text) <= length + 4:
        return text
    return text[: length // 2 + 2] + "…" + text[-(length // 2):]


def truncate(text, length=160):
    text = "" if text is None else str(text)
    return text if len(text) <= length else text[: length - 1] + "…"


def attrs(**values):
    """HTML attributes from keyword arguments (escaped; True -> bare attribute; False/None -> omitted).

    A trailing underscore is dropped (class_ -> class) and _ becomes - (data_x -> data-x).
    """
    parts = []
    for name, value in values.items():
        name = name.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            parts.append(f" {name}")
        else:
            parts.append(f' {name}="{escape(value)}"')
    return Markup("".join(parts))


def safe_url(url):
    """`url` if it is a relative path or an http(s) URL, else '#'. For user-supplied links."""
    text = "" if url is None else str(url).strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")) or (text.startswith("/") and not text.startswith("//")):
        return text
    return "#"


HELPERS = {
    "escape": escape, "safe": safe, "Markup": Markup, "urlencode": urlencode, "query": query,
    "money": money, "usd": usd, "short": short, "truncate": truncate, "attrs": attrs,
    "safe_url": safe_url,
}


def register(name, func):
    """Make `func` available to every template under `name`."""
    HELPERS[name] = func
    return func


def helper(func):
    """Decorator form of register()."""
    return register(func.__name__, func)


# -- the compiler ------------------------------------------------------------

_TOKEN = re.compile(r"({{.*?}}|{%.*?%}\n?|{#.*?#})", re.S)
_FOR = re.compile(r"^for\s+(.+?)\s+in\s+(.+)$", re.S)
_SET = re.compile(r"^set\s+([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*=\s*(.+)$", re.S)
_INCLUDE = re.compile(r"""^include\s+(["'])([A-Za-z0-9_./-]+)\1$""")


class TemplateError(Exception):
    pass


def compile_template(text, name="<string>"):
    """Translate template text into a Python code object."""
    lines = ["_o = []", "_w = _o.append"]
    depth = 0
    stack = []

    def emit(code):
        lines.append("    " * depth + code)

    def lineno(pos):
        return text.count("\n", 0, pos) + 1

    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            emit(f"_w({text[pos:m.start()]!r})")
        pos = m.end()
        token = m.group(0)
        where = f"{name}:{lineno(m.start())}"
        if token.startswith("{#"):
            continue
        if token.startswith("{{"):
            expr = token[2:-2].strip()
            if not expr:
                raise TemplateError(f"{where}: empty {{{{ }}}}")
            _check_expr(expr, where)
            emit(f"_w(_e({expr}))")
            continue
        stmt = token.rstrip("\n")[2:-2].strip()
        word = stmt.split(None, 1)[0] if stmt else ""
        if word == "if":
            _check_expr(stmt[2:].strip(), where)
            emit(f"if {stmt[2:].strip()}:")
            depth += 1
            stack.append(("if", where))
        elif word in ("elif", "else"):
            if not stack or stack[-1][0] != "if":
                raise TemplateError(f"{where}: {word} outside if")
            emit("pass")
            depth -= 1
            if word == "elif":
                _check_expr(stmt[4:].strip(), where)
                emit(f"elif {stmt[4:].strip()}:")
            else:
                emit("else:")
            depth += 1
        elif word in ("endif", "endfor"):
            opener = word[3:]
            if not stack or stack.pop()[0] != opener:
                raise TemplateError(f"{where}: {word} without {opener}")
            emit("pass")
            depth -= 1
        elif word == "for":
            fm = _tag(_FOR, word, stmt, where)
            _check_expr(fm.group(2), where)
            emit(f"for {fm.group(1)} in {fm.group(2)}:")
            depth += 1
            stack.append(("for", where))
        elif word == "set":
            sm = _tag(_SET, word, stmt, where)
            _check_expr(sm.group(2), where)
            emit(f"{sm.group(1)} = {sm.group(2)}")
        elif word == "include":
            im = _tag(_INCLUDE, word, stmt, where)
            emit(f"_w(_include({im.group(2)!r}, globals()))")
        else:
            raise TemplateError(f"{where}: unknown tag {{% {stmt} %}}")
    if pos < len(text):
        emit(f"_w({text[pos:]!r})")
    if stack:
        kind, where = stack[-1]
        raise TemplateError(f"{where}: {kind} is never closed")
    source = "\n".join(lines) + "\n"
    try:
        return compile(source, f"<template {name}>", "exec")
    except SyntaxError as e:
        raise TemplateError(f"{name}: {e}") from None


def _tag(pattern, word, stmt, where):
    """The match of a {% word ... %} tag's pattern; TemplateError when the tag does not fit it."""
    m = pattern.match(stmt)
    if not m:
        raise TemplateError(f"{where}: bad {word}: {stmt}")
    return m


def _check_expr(expr, where):
    try:
        compile(expr, where, "eval")
    except SyntaxError as e:
        raise TemplateError(f"{where}: bad expression {expr!r}: {e.msg}") from None


_cache = {}
_cache_lock = threading.Lock()


def _path(name):
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", name) or ".." in name:
        raise TemplateError(f"bad template name {name!r}")
    return os.path.join(TEMPLATE_DIR, name)


def load(name):
    """The compiled template `name` (cached; re-read when the file changes)."""
    path = _path(name)
    mtime = os.path.getmtime(path)
    hit = _cache.get(name)
    if hit and hit[0] == mtime:
        return hit[1]
    with open(path, encoding="utf-8") as f:
        code = compile_template(f.read(), name)
    with _cache_lock:
        _cache[name] = (mtime, code)
    return code


def _run(code, namespace):
    exec(code, namespace)
    return Markup("".join(namespace["_o"]))


def _include(name, namespace):
    return _run(load(name), dict(namespace))


def _namespace(ctx):
    ns = dict(HELPERS)
    ns["_e"] = escape
    ns["_include"] = _include
    for key, value in ctx.items():
        ns[key] = _wrap(value)
    return ns


def render(name, **ctx):
    """Render templates/<name> with ctx; returns Markup."""
    return _run(load(name), _namespace(ctx))


def render_string(text, **ctx):
    """Render template text (developer-written, never user input); returns Markup."""
    return _run(compile_template(text), _namespace(ctx))


# -- form helpers ------------------------------------------------------------
# Each returns Markup: a labelled control with its error message (from HttpError.fields)
# right under it. `errors` is a dict field -> message; `form` a dict of submitted values.

def _error_for(name, errors):
    message = (errors or {}).get(name)
    if not message:
        return Markup("")
    return Markup(f'<p class="field-error" id="{escape(name)}-error">{escape(message)}</p>')


def field(name, label, form=None, errors=None, type="text", value=None, help=None, id=None, **extra):
    """<label> + <input> + error. The value comes from `value`, else form[name]."""
    if value is None and form is not None and type != "password":
        value = form.get(name)
    invalid = bool((errors or {}).get(name))
    fid = id or "f-" + name
    control = Markup(f"<input{attrs(type=type, name=name, id=fid, value=value, aria_invalid='true' if invalid else None, aria_describedby=(name + '-error') if invalid else None, **extra)}>")
    return _field_div(name, label, fid, control, help, errors)


def _field_div(name, label, fid, control, help, errors):
    """The <div> around a form control: its label (none without `label`), help text and error."""
    hint = Markup(f'<small class="help">{escape(help)}</small>') if help else Markup("")
    css = "field has-error" if (errors or {}).get(name) else "field"
    label_html = Markup(f'<label for="{escape(fid)}">{escape(label)}</label>') if label else Markup("")
    return Markup(f'<div class="{css}">{label_html}{control}{hint}{_error_for(name, errors)}</div>')


def textarea(name, label, form=None, errors=None, value=None, help=None, rows=5, id=None, **extra):
    if value is None and form is not None:
        value = form.get(name)
    fid = id or "f-" + name
    invalid = bool((errors or {}).get(name))
    control = Markup(f"<textarea{attrs(name=name, id=fid, rows=rows, aria_invalid='true' if invalid else None, **extra)}>"
                     f"{escape(value)}</textarea>")
    return _field_div(name, label, fid, control, help, errors)


def select(name, label, options, form=None, errors=None, value=None, help=None, blank=None, id=None,
           **extra):
    """options: list of (value, text) pairs. `blank` adds a first empty choice with that text."""
    fid = id or "f-" + name
    if value is None and form is not None:
        value = form.get(name)
    current = "" if value is None else str(value)
    opts = []
    if blank is not None:
        opts.append(f'<option value="">{escape(blank)}</option>')
    for opt_value, text in options:
        chosen = " selected" if str(opt_value) == current else ""
        opts.append(f'<option value="{escape(opt_value)}"{chosen}>{escape(text)}</option>')
    invalid = bool((errors or {}).get(name))
    control = Markup(f"<select{attrs(name=name, id=fid, aria_invalid='true' if invalid else None, **extra)}>"
                     f"{''.join(opts)}</select>")
    return _field_div(name, label, fid, control, help, errors)


def checkbox(name, label, form=None, errors=None, checked=None, value="1", **extra):
    if checked is None and form is not None:
        checked = bool(form.get(name))
    return Markup(f'<div class="field checkbox"><label><input{attrs(type="checkbox", name=name, value=value, checked=bool(checked), **extra)}> '
                  f"{escape(label)}</label>{_error_for(name, errors)}</div>")


def hidden(name, value):
    return Markup(f"<input{attrs(type='hidden', name=name, value=value)}>")


HELPERS.update({"field": field, "textarea": textarea, "select": select, "checkbox": checkbox,
                "hidden": hidden})


# -- pagination --------------------------------------------------------------

class Pager:
    """Previous/next links for a list fetched with LIMIT limit+1 OFFSET offset.

    pager = Pager(request_path, query_dict, limit, offset, fetched_rows)
    pager.rows is the page (at most `limit` rows); pager.has_next tells if more follow.
    """

    def __init__(self, path, params, limit, offset, rows):
        self.path = path
        self.params = {k: v for k, v in (params or {}).items() if k not in ("offset", "limit")}
        self.limit = limit
        self.offset = offset
        self.has_next = len(rows) > limit
        self.rows = [_wrap(r) for r in rows[:limit]]
        self.has_prev = offset > 0
        self.page = offset // limit + 1 if limit else 1

    def _url(self, offset):
        params = dict(self.params)
        if offset:
            params["offset"] = offset
        if self.limit != DEFAULT_PAGE:
            params["limit"] = self.limit
        return self.path + query(**params)

    @property
    def prev_url(self):
        return self._url(max(0, self.offset - self.limit))

    @property
    def next_url(self):
        return self._url(self.offset + self.limit)


DEFAULT_PAGE = 20
HELPERS["Pager"] = Pager
