"""The session's user and the one check of the names of people who decide."""

import pytest


def test_one_check_for_the_names_of_people_who_decide():
    from updp_napari.audit.store import check_auditor
    from updp_napari.core.errors import InputError
    from updp_napari.core.users import check_person
    from updp_napari.review.store import _check_reviewer

    assert check_person("  Ann Lee ") == _check_reviewer("Ann Lee") == check_auditor(" Ann Lee") == "Ann Lee"
    for bad in ("", "a\nb", "x" * 101):
        for check, role in ((_check_reviewer, "reviewer"), (check_auditor, "auditor")):
            with pytest.raises(InputError, match=role):
                check(bad)


def test_current_user_names_the_role_when_there_is_none(monkeypatch):
    import getpass

    from updp_napari.core.errors import UpdpError
    from updp_napari.core.users import current_user, current_user_or_none

    def no_user():
        raise KeyError("no such user")

    monkeypatch.setattr(getpass, "getuser", no_user)
    with pytest.raises(UpdpError, match="auditor name"):
        current_user("auditor")
    assert current_user_or_none() is None
