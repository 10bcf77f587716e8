"""The original's response shapes, served as supersets of ours.

An API client or SDK written for the original reads a few fields under the original's
names or types; these helpers add them beside our fields without removing any.
"""


def action_result(result):
    """An order action's result (lib.orders.take_action, lib.disputes.resolve) as the API
    answers it: `intent` is the action name string the original answers ("RELEASE",
    "CANCEL", "PARTIAL_REFUND", or null when the action moves no funds) and the intent
    object {uuid, action, status, refund_percent} sits beside it as `intent_detail`."""
    out = dict(result)
    detail = result.get("intent")
    out["intent"] = detail["action"] if detail else None
    out["intent_detail"] = detail
    return out
