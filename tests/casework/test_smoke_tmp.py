from casework import services


def test_happy_path(tree):
    case = services.case_submit(youth=tree.youth, category=tree.category("study"), region_code="440105",
                                title="t", description="d", requested_org=tree.haizhu)
    assert case.org == tree.haizhu
    case = services.case_accept(case=case, actor=tree.handler)
    case = services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    case = services.case_record_verification(case=case, actor=tree.verifier, confirmed=True, findings="ok")
    task = services.case_refer(case=case, actor=tree.handler, partner=tree.partner, instructions="x")
    services.coordination_complete(task=task, actor=tree.partner_staff, result="done")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="n")
    case = services.case_give_feedback(case=case, actor=tree.handler, message="m")
    case = services.case_rate(case=case, actor=tree.youth, timeliness=5, attitude=5, outcome=5, solved="solved")
    assert case.state == "closed"
    from casework.events import verify_case
    assert verify_case(case) is None
    assert case.events.count() == case.last_event_seq == 10
