"""The case flow: who must do what next, and in whose inbox it waits.

The case state machine in ``casework`` is the truth; this flow follows it.
Every human step is finished by a casework service, and the service's call to
``workflows.engine.sync_case_tasks`` completes the flow task, so pages, the
API and Celery all advance the flow the same way.

Node          state(s) it serves        inbox of              page action → service
------------  ------------------------  --------------------  --------------------------------------
intake        submitted                 handlers of case.org  accept → case_accept
                                                              reject → case_reject
schedule_     accepted                  handlers of case.org  schedule → case_schedule_verification
verification                                                  request_info → case_request_info
                                                              reject → case_reject
verification  verifying                 verifiers of          record → case_record_verification
                                        case.station (or of   (confirmed or not: one service)
                                        case.org without one) request_info → case_request_info
coordination  coordinating              handlers of case.org  resolve → case_resolve
                                                              refer → case_refer (task stays open)
                                                              request_info → case_request_info
feedback      resolved                  handlers of case.org  give_feedback → case_give_feedback
youth_turn    awaiting_youth,           nobody's (held by     none: the youth's services
              feedback_given            case.org)             (provide_info, rate, dispute,
                                                              withdraw) or auto_close finish it
end           closed, rejected,
              withdrawn

Supervisors see every human task held in their subtree. Each page action
calls exactly one service; the flow moves because the case moved.
"""

from __future__ import annotations

from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow, lock
from viewflow.workflow.activation import Activation
from viewflow.workflow.exceptions import FlowRuntimeError
from viewflow.workflow.nodes.handle import HandleActivation
from viewflow.workflow.nodes.switch import SwitchActivation
from viewflow.workflow.nodes.view import ViewActivation
from viewflow.workflow.signals import task_finished
from viewflow.workflow.status import STATUS

from casework.permissions import HANDLER, VERIFIER
from casework.states import CaseState

from . import views
from .models import CaseProcess, CaseTask

# The one map from case state to the node that serves it; the route Switch is
# built from it, and the engine reads it to know whether a task still fits.
NODE_FOR_STATE: dict[str, str] = {
    CaseState.SUBMITTED: "intake",
    CaseState.ACCEPTED: "schedule_verification",
    CaseState.VERIFYING: "verification",
    CaseState.COORDINATING: "coordination",
    CaseState.RESOLVED: "feedback",
    CaseState.AWAITING_YOUTH: "youth_turn",
    CaseState.FEEDBACK_GIVEN: "youth_turn",
}


class CaseTaskActivationMixin:
    """Creates case tasks already held by the right organisation; finishes them for the case.

    ``follow_case`` is how the engine completes a task whichever status it is
    in (new, assigned or started): the case has moved on, so the step is done.
    """

    @classmethod
    def create(cls, flow_task, prev_activation, token, data=None, seed=None):
        process = prev_activation.process
        task = flow_task.flow_class.task_class(
            process=process,
            flow_task=flow_task,
            token=token,
            case_id=process.case_id,
            org_id=flow_task.holder_id(process.case),
        )
        task.data = data if data is not None else {}
        task.save()
        task.previous.add(prev_activation.task)
        return cls(task)

    @Activation.status.transition(
        source=[STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED], target=STATUS.DONE
    )
    def follow_case(self, actor=None):
        finished = now()
        task = self.task
        task.started = task.started or finished
        task.finished = finished
        if actor is not None and task.owner_id is None:
            task.owner = actor  # who finished the step, for the record
        task.save()
        task_finished.send(sender=self.flow_class, process=self.process, task=task)
        self.activate_next()


class CaseViewActivation(CaseTaskActivationMixin, ViewActivation):
    pass


class CaseHandleActivation(CaseTaskActivationMixin, HandleActivation):
    pass


class CaseView(flow.View):
    """A human step: its page is ``view``; ``role`` members of the holder see it."""

    activation_class = CaseViewActivation

    def __init__(self, view, *, role: str = HANDLER, at_station: bool = False, **kwargs):
        super().__init__(view, **kwargs)
        self.role = role
        self.at_station = at_station

    def holder_id(self, case) -> int:
        if self.at_station and case.station_id:
            return case.station_id
        return case.org_id


class CaseHandle(flow.Handle):
    """A wait outside the staff's hands (the youth, or the rating window)."""

    activation_class = CaseHandleActivation
    role = None

    def holder_id(self, case) -> int:
        return case.org_id


class CaseSwitchActivation(SwitchActivation):
    """Decides before it is saved, so the route step costs one INSERT, not INSERT + UPDATE.

    The choice reads only the in-memory case: no savepoint, no query. The
    task is stored already done; viewflow then only asks it for the next node.
    """

    @classmethod
    def create(cls, flow_task, prev_activation, token, data=None, seed=None):
        process = prev_activation.process
        moment = now()
        task = flow_task.flow_class.task_class(
            process=process,
            flow_task=flow_task,
            token=token,
            case_id=process.case_id,
            status=STATUS.DONE,
            started=moment,
            finished=moment,
        )
        task.data = data if data is not None else {}
        activation = cls(task)
        activation.next_task = activation.choose()
        task.save()
        task.previous.add(prev_activation.task)
        return activation

    def choose(self):
        for node, cond in self.flow_task._branches:
            if cond is None or cond(self):
                return node
        raise FlowRuntimeError(f"No next task available for {self.flow_task.name}")


class CaseSwitch(flow.Switch):
    activation_class = CaseSwitchActivation


def _serves(node_name: str):
    def condition(activation) -> bool:
        return NODE_FOR_STATE.get(activation.process.case.state) == node_name

    condition.__name__ = f"state_calls_for_{node_name}"
    return condition


class CaseFlow(flow.Flow):
    """Case handling

    The human steps of one help request, from intake review to the youth's rating.
    """

    process_class = CaseProcess
    task_class = CaseTask
    lock_impl = lock.select_for_update_lock

    start = flow.StartHandle(this.start_process).Next(this.route)

    route = (
        CaseSwitch()
        .Case(this.intake, _serves("intake"))
        .Case(this.schedule_verification, _serves("schedule_verification"))
        .Case(this.verification, _serves("verification"))
        .Case(this.coordination, _serves("coordination"))
        .Case(this.feedback, _serves("feedback"))
        .Case(this.youth_turn, _serves("youth_turn"))
        .Default(this.end)
    )

    intake = (
        CaseView(views.IntakeView.as_view()).Annotation(title=_("Intake review")).Next(this.route)
    )
    schedule_verification = (
        CaseView(views.ScheduleVerificationView.as_view())
        .Annotation(title=_("Send for offline verification"))
        .Next(this.route)
    )
    verification = (
        CaseView(views.VerificationView.as_view(), role=VERIFIER, at_station=True)
        .Annotation(title=_("Offline verification"))
        .Next(this.route)
    )
    coordination = (
        CaseView(views.CoordinationView.as_view())
        .Annotation(title=_("Coordination"))
        .Next(this.route)
    )
    feedback = (
        CaseView(views.FeedbackView.as_view())
        .Annotation(title=_("Feedback to the youth"))
        .Next(this.route)
    )
    youth_turn = CaseHandle().Annotation(title=_("Waiting for the youth")).Next(this.route)

    end = flow.End()

    def start_process(self, activation, case):
        activation.process.case = case
        return activation.process

    @classmethod
    def node_for_state(cls, state: str):
        """The node that should hold the open task of a case in ``state`` (None: no task)."""
        name = NODE_FOR_STATE.get(state)
        return getattr(cls, name) if name else None

    @classmethod
    def human_nodes(cls) -> list[CaseView]:
        return [n for n in cls.instance.nodes() if isinstance(n, CaseView)]
