"""A case's action log in words: what ``updp history`` prints and the review dock shows."""

from __future__ import annotations


def history_line(entry) -> str:
    """One action-log entry in words (ids, offsets and settings; never report text)."""
    d = entry.detail
    if entry.action == "decide":
        text = f"{d.get('decision')} (was {d.get('previous_status')})"
        if d.get("overrides"):
            text += (f", over {d['overrides'].get('reviewer')}'s {d['overrides'].get('decision')}"
                     " (override)")
        if d.get("readers"):
            text += (f"; readers {' and '.join(d['readers'])} "
                     + ("agreed" if d.get("agreed") else "disagreed: to adjudicate"))
        if d.get("image"):
            text += f"; shares: {d['image']}"
        if d.get("seconds") is not None:
            text += f"; {d['seconds']:.0f} s on the case"
    elif entry.action == "read":
        text = f"read blind: {d.get('decision')}"
        if d.get("image"):
            text += f"; shares: {d['image']}"
    elif entry.action == "second_reader":
        text = f"second-reader mode {'on' if d.get('on') else 'off'}"
    elif entry.action == "undo":
        text = f"took back the {d.get('decision')} (was {d.get('previous_status')}); pending"
        if d.get("overrides"):
            text += f", over {d['overrides'].get('reviewer')}'s decision (override)"
    elif entry.action == "toggle_span":
        text = f"span {d.get('span_id')}: {d.get('from')} -> {d.get('to')}"
    elif entry.action == "add_span":
        text = (f"added span {d.get('span_id')} [{d.get('start')}, {d.get('end')}) "
                f"{d.get('category')} ({d.get('action')})")
    elif entry.action == "edit_mask":
        text = "edited the preserved region"
    elif entry.action == "regenerate":
        settings = ", ".join(f"{k} {d[k]}" for k in ("strength", "seed", "steps", "dilation")
                             if d.get(k) is not None)
        text = "regenerated the synthetic image" + (f" ({settings})" if settings else "")
    else:
        text = entry.action
    return f"{entry.at[:19].replace('T', ' ')}  {entry.reviewer:<12}  {text}"
