from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from . import selectors


def home(request):
    return redirect("casework:case_list")


@login_required
def case_list(request):
    cases = selectors.cases_visible_to(request.user)[:100]
    return render(request, "casework/case_list.html", {"cases": cases})
