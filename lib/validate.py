"""Generic checks of user input, shared by every lib/ module that takes it: uuids, free
texts, on/off flags. Each bad value is a 400 naming its field; nothing here reads the
database.
"""
import re

from lib.http import BadRequest

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def is_uuid(value):
    return isinstance(value, str) and bool(UUID_RE.match(value))


def text(value, field, max_length, required=False, multiline=True):
    """A user-supplied text: stripped, length-checked, no control characters. None if empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string", fields={field: "must be a string"})
    value = value.strip()
    if not value:
        if required:
            raise BadRequest(f"{field} is required", fields={field: "required"})
        return None
    if len(value) > max_length:
        raise BadRequest(f"{field} is longer than {max_length} characters",
                         fields={field: f"at most {max_length} characters"})
    bad = CONTROL_RE.search(value) or (not multiline and re.search(r"[\r\n\t]", value))
    if bad:
        raise BadRequest(f"{field} contains control characters", fields={field: "control characters"})
    return value


def truthy(value):
    """A lenient flag (a checkbox): 1, true, yes or on is True, anything else False."""
    return str(value).strip().lower() in TRUE_WORDS if value is not None else False


def boolean(value, field):
    """A strict flag: 1/true/yes/on -> True, 0/false/no/off -> False, else 400."""
    word = value.lower() if isinstance(value, str) else value
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise BadRequest(f"{field} must be 1 or 0", fields={field: "1 or 0"})


def choice(data, field, handlers):
    """handlers[data[field]]: the handler a request's `field` (its `action`, a form's `form`)
    names; 400 listing the names for anything else."""
    name = data.get(field)
    if not isinstance(name, str) or name not in handlers:
        names = list(handlers)
        raise BadRequest(f"{field} must be {', '.join(names[:-1])} or {names[-1]}", fields={field: "bad"})
    return handlers[name]
