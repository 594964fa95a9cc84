"""One whole case story seeded with distinctive personal values, for the leak checks.

Used by the dump grep (test_privacy_dump), the log scan (test_log_scan) and the
backup test: every value in ``SECRETS`` is something a youth or staff member
wrote, and must never appear in plain text in the database, a log line or a
message to a partner body.
"""

from __future__ import annotations

from datetime import date

from django.urls import reverse

from casework import services
from casework.models import Case, CoordinationTask

# Each is unusual enough that finding it anywhere can only mean a leak.
SECRETS = {
    "name": "冼秘密名字",
    "phone": "13987654321",
    "email": "leak.probe.7731@example.org",
    "guardian": "冼监护人秘密",
    "title": "标题秘密QX71",
    "description": "描述秘密ZK42-被同学欺负",
    "question": "问题秘密PW93",
    "answer": "回答秘密MN58",
    "findings": "核实秘密HF26",
    "instructions": "转办说明秘密JD84",
    "result": "办理结果秘密RS17",
    "note": "结果说明秘密NT63",
    "feedback": "反馈秘密FB39",
    "comment": "评价秘密CM55",
    # An ordinary-looking day no calendar row holds: a 12- or 13-year-old's birthday.
    "birth_date": f"{date.today().year - 13}-11-23",
}


def run_story(tree, client=None) -> Case:
    """A 13-year-old's case from consent to rating, with pages opened along the way."""
    s = SECRETS
    youth = tree.youth
    youth.display_name, youth.phone, youth.email = s["name"], s["phone"], s["email"]
    youth.birth_date = date.fromisoformat(s["birth_date"])
    youth.save()
    services.record_guardian_consent(
        youth=youth, guardian_name=s["guardian"], relationship="母亲", method="phone", actor=youth
    )
    case = services.case_submit(
        youth=youth,
        category=tree.category("study"),
        region_code="440105",
        title=s["title"],
        description=s["description"],
    )
    if client is not None:
        client.force_login(tree.handler)
        assert client.get(reverse("casework:case_detail", args=[case.reference])).status_code == 200
    case = services.case_accept(case=case, actor=tree.handler)
    case = services.case_request_info(case=case, actor=tree.handler, question=s["question"])
    case = services.case_provide_info(case=case, actor=youth, answer=s["answer"])
    case = services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    case = services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings=s["findings"]
    )
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions=s["instructions"]
    )
    services.coordination_complete(task=task, actor=tree.partner_staff, result=s["result"])
    case = services.case_resolve(
        case=case, actor=tree.handler, outcome=Case.Outcome.SOLVED, note=s["note"]
    )
    case = services.case_give_feedback(case=case, actor=tree.handler, message=s["feedback"])
    case = services.case_rate(
        case=case,
        actor=youth,
        timeliness=5,
        attitude=5,
        outcome=4,
        solved="solved",
        comment=s["comment"],
    )
    if client is not None:
        client.force_login(tree.youth)
        assert client.get(reverse("casework:case_detail", args=[case.reference])).status_code == 200
        client.force_login(tree.city_supervisor)
        client.get(reverse("casework:case_detail", args=[case.reference]))
        client.get(reverse("casework:case_list"))
    assert CoordinationTask.objects.filter(case=case).count() == 1
    return case
