"""The demo data: a slice of the Guangdong youth-league tree, people in every role, and cases.

Plain functions that ``manage.py seed_demo`` calls. The tree and the people are
configuration and are written with get-or-create, so running the seed again
changes nothing. Cases are only ever created and moved through
``casework.services``, so their timelines, hash chains and human tasks are real;
they are built once, the first time (the demo youth having cases marks that).

Every person and story here is an invented demo persona (see docs and
``STORIES.md``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from . import services
from .models import Case, Category, Membership, Organisation, Rating, User
from .models_stations import StationException, StationProfile, StationService
from .states import CaseState

DEFAULT_PASSWORD = "youthvoice-demo"
RANDOM_SEED = 2026
# The youth whose cases mark that the demo cases were built already.
MARKER_YOUTH = "chen_xiaoyu"

ALL = None  # an organisation that handles every category

L = Organisation.Level
K = Organisation.Kind

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
WEEK = (*WEEKDAYS, "sat", "sun")


def _hours(days, *spans):
    return {day: [list(span) for span in spans] for day in days}


STATION_HOURS = _hours(
    ("tue", "wed", "thu", "fri", "sat", "sun"), ("09:00", "12:00"), ("14:00", "21:00")
)
OFFICE_HOURS = _hours(WEEKDAYS, ("09:00", "12:00"), ("14:00", "18:00"))
PALACE_HOURS = _hours(WEEK, ("09:00", "21:00"))

STATION_CATEGORIES = ["study", "hardship", "family", "psychological", "employment", "other"]


@dataclass
class OrgSpec:
    name: str
    name_en: str
    level: int
    region: str
    kind: str = K.LEAGUE
    categories: list[str] | None = ALL
    routes_by_region: bool = True
    opening_hours: dict = field(default_factory=dict)
    capacity: int = 100
    children: list[OrgSpec] = field(default_factory=list)


def _station(name, name_en, region, hours=STATION_HOURS, categories=STATION_CATEGORIES):
    return OrgSpec(
        name,
        name_en,
        L.BRANCH,
        region,
        kind=K.STATION,
        categories=categories,
        routes_by_region=False,
        opening_hours=hours,
        capacity=30,
    )


def _partner(name, name_en, region):
    return OrgSpec(
        name, name_en, L.BRANCH, region, kind=K.PARTNER, categories=[], routes_by_region=False
    )


def _branch(name, name_en, region):
    return OrgSpec(name, name_en, L.BRANCH, region, routes_by_region=False, capacity=20)


def _district(name, name_en, region, *children):
    return OrgSpec(name, name_en, L.DISTRICT, region, children=list(children))


TREE = OrgSpec(
    "共青团广东省委员会",
    "Guangdong Provincial Committee of the Communist Youth League",
    L.PROVINCE,
    "440000",
    capacity=500,
    children=[
        OrgSpec(
            "共青团广州市委员会",
            "Guangzhou Municipal Committee of the Communist Youth League",
            L.CITY,
            "440100",
            capacity=300,
            children=[
                _district(
                    "海珠区团委",
                    "Haizhu District Youth League Committee",
                    "440105",
                    _branch(
                        "江南中街道团工委",
                        "Jiangnanzhong Subdistrict Youth League Working Committee",
                        "440105",
                    ),
                    _station("海珠青年之家·江南西", "Haizhu Youth Home · Jiangnanxi", "440105"),
                    _partner("海珠区教育局", "Haizhu District Education Bureau", "440105"),
                ),
                _district(
                    "越秀区团委",
                    "Yuexiu District Youth League Committee",
                    "440104",
                    _branch(
                        "北京街道团工委",
                        "Beijing Subdistrict Youth League Working Committee",
                        "440104",
                    ),
                    _station("越秀青年之家·北京路", "Yuexiu Youth Home · Beijing Road", "440104"),
                    _partner("越秀区公安分局", "Yuexiu Public Security Sub-bureau", "440104"),
                ),
                _district(
                    "白云区团委",
                    "Baiyun District Youth League Committee",
                    "440111",
                    _station("白云青年之家·京溪", "Baiyun Youth Home · Jingxi", "440111"),
                    _partner(
                        "白云区人力资源和社会保障局",
                        "Baiyun District Human Resources and Social Security Bureau",
                        "440111",
                    ),
                ),
                _district(
                    "南沙区团委",
                    "Nansha District Youth League Committee",
                    "440115",
                    # The seeds' model station: open around the clock.
                    _station("南沙青年之家", "Nansha Youth Home", "440115", hours={"24h": True}),
                ),
                _district(
                    "天河区团委",
                    "Tianhe District Youth League Committee",
                    "440106",
                    _station("天河青年之家·石牌", "Tianhe Youth Home · Shipai", "440106"),
                ),
                OrgSpec(
                    "中山大学团委",
                    "Sun Yat-sen University Youth League Committee",
                    L.DISTRICT,
                    "440105",
                    routes_by_region=False,
                    children=[
                        _branch(
                            "中山大学岭南学院团委",
                            "Lingnan College Youth League Committee, Sun Yat-sen University",
                            "440105",
                        )
                    ],
                ),
                OrgSpec(
                    "华南师范大学团委",
                    "South China Normal University Youth League Committee",
                    L.DISTRICT,
                    "440106",
                    routes_by_region=False,
                ),
                OrgSpec(
                    # The seeds' 省市线下服务总站, home of the 12355 desk.
                    "广州市青年文化宫",
                    "Guangzhou Youth Cultural Palace",
                    L.BRANCH,
                    "440100",
                    kind=K.STATION,
                    categories=STATION_CATEGORIES,
                    routes_by_region=False,
                    opening_hours=PALACE_HOURS,
                    capacity=60,
                    children=[
                        OrgSpec(
                            "12355 青少年服务台",
                            "12355 Youth Service Desk",
                            L.BRANCH,
                            "440100",
                            kind=K.SOCIAL,
                            categories=["psychological", "family", "legal", "safety"],
                            routes_by_region=False,
                            opening_hours=_hours(WEEK, ("08:00", "22:00")),
                            capacity=80,
                        )
                    ],
                ),
                OrgSpec(
                    "广州市青少年社会工作服务中心",
                    "Guangzhou Youth Social Work Service Centre",
                    L.DISTRICT,
                    "440100",
                    kind=K.SOCIAL,
                    categories=["hardship", "family", "psychological", "study"],
                    routes_by_region=False,
                    opening_hours=OFFICE_HOURS,
                    capacity=40,
                ),
            ],
        ),
        OrgSpec(
            "共青团深圳市委员会",
            "Shenzhen Municipal Committee of the Communist Youth League",
            L.CITY,
            "440300",
            capacity=300,
            children=[
                _district(
                    "福田区团委",
                    "Futian District Youth League Committee",
                    "440304",
                    _station("福田青年之家·华强北", "Futian Youth Home · Huaqiangbei", "440304"),
                ),
                _district(
                    "南山区团委",
                    "Nanshan District Youth League Committee",
                    "440305",
                    _station("南山青年之家·蛇口", "Nanshan Youth Home · Shekou", "440305"),
                ),
            ],
        ),
        OrgSpec(
            "共青团佛山市委员会",
            "Foshan Municipal Committee of the Communist Youth League",
            L.CITY,
            "440600",
            capacity=300,
            children=[
                _district(
                    "禅城区团委",
                    "Chancheng District Youth League Committee",
                    "440604",
                    _station("禅城青年之家·祖庙", "Chancheng Youth Home · Zumiao", "440604"),
                ),
                _district("南海区团委", "Nanhai District Youth League Committee", "440605"),
            ],
        ),
    ],
)

H, V, P, S = (
    Membership.Role.HANDLER,
    Membership.Role.VERIFIER,
    Membership.Role.PARTNER,
    Membership.Role.SUPERVISOR,
)


@dataclass(frozen=True)
class PersonSpec:
    username: str
    display_name: str
    roles: tuple[tuple[str, str], ...] = ()  # (organisation name, role)
    age: int | None = None  # youth only
    region: str = ""


STAFF = [
    PersonSpec("province_inspector", "省级督查员", (("共青团广东省委员会", S),)),
    PersonSpec("gd_handler", "梁干事", (("共青团广东省委员会", H),)),
    PersonSpec("zhou_shuji", "周书记", (("共青团广州市委员会", S),)),
    PersonSpec("gz_handler", "陈干事", (("共青团广州市委员会", H),)),
    PersonSpec("liu_laoshi", "刘老师", (("海珠区团委", H),)),
    PersonSpec("yuexiu_handler", "杜老师", (("越秀区团委", H),)),
    PersonSpec("baiyun_handler", "郑老师", (("白云区团委", H),)),
    PersonSpec("nansha_handler", "冯老师", (("南沙区团委", H),)),
    PersonSpec("tianhe_handler", "罗老师", (("天河区团委", H),)),
    PersonSpec("sysu_handler", "孙老师", (("中山大学团委", H),)),
    PersonSpec("scnu_handler", "谢老师", (("华南师范大学团委", H),)),
    PersonSpec("jiangnanzhong_handler", "邓干事", (("江南中街道团工委", H),)),
    PersonSpec("futian_handler", "许老师", (("福田区团委", H),)),
    PersonSpec("nanshan_handler", "曾老师", (("南山区团委", H),)),
    PersonSpec("chancheng_handler", "潘老师", (("禅城区团委", H),)),
    PersonSpec("nanhai_handler", "彭老师", (("南海区团委", H),)),
    PersonSpec("nansha_zhanzhang", "何站长", (("南沙青年之家", H),)),
    PersonSpec("huang_shegong", "黄社工", (("南沙青年之家", V),)),
    PersonSpec("lin_shegong", "林社工", (("海珠青年之家·江南西", V),)),
    PersonSpec("yuexiu_verifier", "苏社工", (("越秀青年之家·北京路", V),)),
    PersonSpec("baiyun_verifier", "叶社工", (("白云青年之家·京溪", V),)),
    PersonSpec("tianhe_verifier", "田社工", (("天河青年之家·石牌", V),)),
    PersonSpec("wu_shegong", "吴社工", (("广州市青年文化宫", V),)),
    PersonSpec("futian_verifier", "蒋社工", (("福田青年之家·华强北", V),)),
    PersonSpec("nanshan_verifier", "韩社工", (("南山青年之家·蛇口", V),)),
    PersonSpec("chancheng_verifier", "唐社工", (("禅城青年之家·祖庙", V),)),
    PersonSpec("haizhu_edu", "海珠区教育局·杨科长", (("海珠区教育局", P),)),
    PersonSpec("baiyun_hrss", "白云区人社局·马科长", (("白云区人力资源和社会保障局", P),)),
    PersonSpec("yuexiu_police", "越秀公安·钟警官", (("越秀区公安分局", P),)),
    PersonSpec("hotline_12355", "12355·高老师", (("12355 青少年服务台", P),)),
    PersonSpec("social_worker", "社工中心·姚社工", (("广州市青少年社会工作服务中心", P),)),
]

STORY_YOUTH = [
    PersonSpec("chen_xiaoyu", "陈小雨", age=16, region="440105"),
    PersonSpec("li_ming", "李明", age=22, region="440111"),
    PersonSpec("wang_fang", "王芳", age=13, region="440115"),
    PersonSpec("zhang_wei", "张伟", age=19, region="440105"),
    PersonSpec("new_user_0417", "新用户0417", age=20, region="440104"),
]

# Youth for the generated cases; each lives in a district that has a station.
OTHER_YOUTH = [
    PersonSpec("zhao_xiaolong", "赵小龙", age=17, region="440104"),
    PersonSpec("huang_jiayi", "黄嘉怡", age=15, region="440106"),
    PersonSpec("wu_junjie", "吴俊杰", age=20, region="440111"),
    PersonSpec("lin_xiaotong", "林晓彤", age=18, region="440115"),
    PersonSpec("he_zixuan", "何子轩", age=14, region="440105"),
    PersonSpec("deng_siqi", "邓思琪", age=21, region="440304"),
    PersonSpec("liang_haoran", "梁浩然", age=23, region="440305"),
    PersonSpec("guo_yutong", "郭雨桐", age=16, region="440604"),
]

PEOPLE = [*STAFF, *STORY_YOUTH, *OTHER_YOUTH]


# --- the tree ---------------------------------------------------------------


def _org_fields(spec: OrgSpec) -> dict:
    return {
        "name_en": spec.name_en,
        "level": spec.level,
        "kind": spec.kind,
        "region_code": spec.region,
        "routes_by_region": spec.routes_by_region,
        "opening_hours": spec.opening_hours,
        "capacity": spec.capacity,
    }


def _ensure_org(spec: OrgSpec, parent: Organisation | None) -> tuple[Organisation, bool]:
    """Get the organisation by name under ``parent`` (or as a root), creating it if missing."""
    manager = Organisation.objects
    siblings = manager.get_children(parent) if parent else manager.get_root_nodes()
    org = siblings.filter(name=spec.name).first()
    fields = _org_fields(spec)
    if org is None:
        org = Organisation(name=spec.name, **fields)
        org = manager.add_child(parent, instance=org) if parent else manager.add_root(instance=org)
        created = True
    else:
        changed = [f for f, value in fields.items() if getattr(org, f) != value]
        for f in changed:
            setattr(org, f, fields[f])
        if changed:
            org.save(update_fields=changed)
        created = False
    return org, created


def ensure_tree(log: Callable[[str], None] = print) -> dict[str, Organisation]:
    """Create (or find) every organisation of the demo tree; returns them by name."""
    categories = {c.code: c for c in Category.objects.all()}
    orgs: dict[str, Organisation] = {}
    created = 0

    def walk(spec: OrgSpec, parent: Organisation | None):
        nonlocal created
        org, was_created = _ensure_org(spec, parent)
        created += was_created
        codes = list(categories) if spec.categories is ALL else spec.categories
        org.categories.set([categories[c] for c in codes])
        orgs[spec.name] = org
        for child in spec.children:
            # Re-read the parent: adding children moves treebeard's counters on the row.
            walk(child, Organisation.objects.get(pk=org.pk))

    walk(TREE, None)
    log(f"Organisations: {len(orgs)} in the demo tree ({created} new).")
    return orgs


# --- station directory (docs/stations.md) ------------------------------------

STATION_SERVICES = [
    ("tutoring", "学业辅导", "Tutoring"),
    ("counselling", "心理咨询", "Counselling"),
    ("legal", "法律咨询", "Legal advice"),
    ("employment", "就业指导", "Job guidance"),
    ("family", "亲子家庭服务", "Family support"),
    ("volunteering", "志愿服务", "Volunteering"),
]


@dataclass(frozen=True)
class StationSpec:
    address: str
    address_en: str
    point: tuple[str, str]  # latitude, longitude
    services: tuple[str, ...]
    visits_per_hour: int = 2
    opens_on_public_holidays: bool = False
    phone: str = ""


STATIONS = {
    "海珠青年之家·江南西": StationSpec(
        "广州市海珠区江南西路38号",
        "38 Jiangnan West Road, Haizhu, Guangzhou",
        ("23.096600", "113.270500"),
        ("tutoring", "counselling", "family"),
        phone="020-8443 0000",
    ),
    "越秀青年之家·北京路": StationSpec(
        "广州市越秀区北京路200号",
        "200 Beijing Road, Yuexiu, Guangzhou",
        ("23.125500", "113.269000"),
        ("counselling", "legal", "volunteering"),
    ),
    "白云青年之家·京溪": StationSpec(
        "广州市白云区京溪路8号",
        "8 Jingxi Road, Baiyun, Guangzhou",
        ("23.180000", "113.326000"),
        ("employment", "legal", "tutoring"),
    ),
    "南沙青年之家": StationSpec(
        "广州市南沙区进港大道100号",
        "100 Jingang Avenue, Nansha, Guangzhou",
        ("22.801000", "113.530000"),
        ("tutoring", "family", "volunteering", "counselling"),
        visits_per_hour=3,
        opens_on_public_holidays=True,  # the seeds' model station, open around the clock
        phone="020-3468 0000",
    ),
    "天河青年之家·石牌": StationSpec(
        "广州市天河区石牌西路50号",
        "50 Shipai West Road, Tianhe, Guangzhou",
        ("23.133000", "113.338000"),
        ("employment", "counselling"),
    ),
    "广州市青年文化宫": StationSpec(
        "广州市越秀区北京路238号",
        "238 Beijing Road, Yuexiu, Guangzhou",
        ("23.124000", "113.276000"),
        ("counselling", "legal", "employment", "volunteering"),
        visits_per_hour=4,
        phone="12355",
    ),
    "福田青年之家·华强北": StationSpec(
        "深圳市福田区华强北路1号",
        "1 Huaqiang North Road, Futian, Shenzhen",
        ("22.544000", "114.085000"),
        ("employment", "tutoring"),
    ),
    "南山青年之家·蛇口": StationSpec(
        "深圳市南山区蛇口工业一路10号",
        "10 Industrial Road 1, Shekou, Nanshan, Shenzhen",
        ("22.487000", "113.915000"),
        ("counselling", "family"),
    ),
    "禅城青年之家·祖庙": StationSpec(
        "佛山市禅城区祖庙路20号",
        "20 Zumiao Road, Chancheng, Foshan",
        ("23.033000", "113.109000"),
        ("tutoring", "volunteering"),
    ),
}
# A closure a week ahead, to show the exceptions in the directory and the booking.
CLOSURE = ("海珠青年之家·江南西", 7, "设施维护,暂停开放")


def ensure_stations(orgs: dict[str, Organisation], log: Callable[[str], None] = print) -> int:
    """Profiles (address, map point, services, seats) of the demo's stations."""
    services_by_code = {}
    for order, (code, name, name_en) in enumerate(STATION_SERVICES):
        services_by_code[code], _ = StationService.objects.update_or_create(
            code=code, defaults={"name": name, "name_en": name_en, "ordering": order}
        )
    for name, spec in STATIONS.items():
        profile, _ = StationProfile.objects.update_or_create(
            station=orgs[name],
            defaults={
                "address": spec.address,
                "address_en": spec.address_en,
                "latitude": spec.point[0],
                "longitude": spec.point[1],
                "phone": spec.phone,
                "visits_per_hour": spec.visits_per_hour,
                "opens_on_public_holidays": spec.opens_on_public_holidays,
            },
        )
        profile.services.set([services_by_code[c] for c in spec.services])
    name, days, note = CLOSURE
    StationException.objects.update_or_create(
        station=orgs[name],
        date=timezone.localdate() + timedelta(days=days),
        defaults={"kind": StationException.Kind.CLOSED, "note": note},
    )
    log(f"Stations: {len(STATIONS)} directory profiles, {len(STATION_SERVICES)} services.")
    return len(STATIONS)


# --- people -----------------------------------------------------------------


def _birth_date(age: int, today: date) -> date:
    """A birthday a month past, so the person is exactly ``age`` today."""
    day = today - timedelta(days=30)
    try:
        return day.replace(year=day.year - age)
    except ValueError:  # 29 February
        return day.replace(year=day.year - age, day=28)


def ensure_people(
    orgs: dict[str, Organisation], password: str, log: Callable[[str], None] = print
) -> dict[str, User]:
    """Create (or find) the demo users and memberships; every demo password is reset."""
    # One hash for everyone: hashing dozens of times would make the seed slow for nothing.
    hashed = make_password(password)
    today = timezone.localdate()
    users: dict[str, User] = {}
    new_users = new_memberships = 0
    for spec in PEOPLE:
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults={
                "display_name": spec.display_name,
                "region_code": spec.region,
                "birth_date": _birth_date(spec.age, today) if spec.age is not None else None,
            },
        )
        new_users += created
        user.password = hashed
        user.save(update_fields=["password"])
        if created and spec.age is not None and spec.age < 14:
            # Under 14: a guardian's consent is on record before any request (docs/privacy.md).
            services.record_guardian_consent(
                youth=user,
                guardian_name="监护人",
                relationship="母亲",
                method="written",
                actor=None,
            )
        for org_name, role in spec.roles:
            _, created = Membership.objects.get_or_create(
                user=user, organisation=orgs[org_name], role=role
            )
            new_memberships += created
        users[spec.username] = user

    admin, created = User.objects.get_or_create(
        username="admin",
        defaults={"display_name": "平台管理员", "is_staff": True, "is_superuser": True},
    )
    new_users += created
    admin.password = hashed
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["password", "is_staff", "is_superuser"])
    users["admin"] = admin
    log(
        f"Users: {len(users)} demo users ({new_users} new), "
        f"{sum(len(p.roles) for p in PEOPLE)} memberships ({new_memberships} new)."
    )
    return users


def people_table() -> list[tuple[str, str, str]]:
    """(username, display name, roles) for every demo user, for the closing printout."""
    rows = [("admin", "平台管理员", "superuser (Django admin)")]
    for spec in PEOPLE:
        roles = ", ".join(f"{role} @ {org}" for org, role in spec.roles) or (
            f"youth, {spec.age}, region {spec.region}"
        )
        rows.append((spec.username, spec.display_name, roles))
    return rows


# --- cases ------------------------------------------------------------------


class Actors:
    """Who acts for an organisation in the demo, loaded once.

    The same user objects are reused for every service call so their cached
    roles are read once (memberships do not change while cases are built).
    """

    def __init__(self):
        self.users = {u.username: u for u in User.objects.all()}
        self._by_org_role: dict[tuple[int, str], User] = {}
        for m in Membership.objects.select_related("user").order_by("pk"):
            self._by_org_role.setdefault((m.organisation_id, m.role), self.users[m.user.username])
        self.orgs = {o.name: o for o in Organisation.objects.all()}

    def __getitem__(self, username: str) -> User:
        return self.users[username]

    def at(self, org_id: int, role: str) -> User | None:
        return self._by_org_role.get((org_id, role))

    def handler(self, case: Case) -> User:
        user = self.at(case.org_id, H)
        if user is None:
            raise LookupError(f"no demo handler at {case.org}")
        return user

    def verifier(self, case: Case) -> User:
        user = self.at(case.station_id, V) if case.station_id else None
        user = user or self.at(case.org_id, V)
        if user is None:
            raise LookupError(f"no demo verifier for {case}")
        return user


def demo_cases_exist() -> bool:
    return Case.objects.filter(youth__username=MARKER_YOUTH).exists()


def _later(days: int):
    return timezone.now() + timedelta(days=days)


def _submit(youth: User, category: str, title: str, description: str, **kw) -> Case:
    return services.case_submit(
        youth=youth,
        category=Category.objects.get(code=category),
        region_code=kw.pop("region_code", youth.region_code),
        title=title,
        description=description,
        **kw,
    )


def story_school_bullying(a: Actors) -> Case:
    """Story 1: 陈小雨, 16, bullied at school; verified offline, the bureau helps, closed 5/5/5."""
    liu, chen = a["liu_laoshi"], a["chen_xiaoyu"]
    case = _submit(
        chen,
        "safety",
        "在学校被同学欺负",
        "最近一个月,班上几个同学经常在放学后堵我、抢我的东西,还在班级群里骂我。"
        "我不敢告诉老师,希望团委能帮帮我。",
        urgency=Case.Urgency.HIGH,
        requested_org=a.orgs["海珠区团委"],
    )
    services.case_accept(case=case, actor=liu)
    services.case_schedule_verification(case=case, actor=liu, station=a.orgs["海珠青年之家·江南西"])
    services.case_record_verification(
        case=case,
        actor=a["lin_shegong"],
        confirmed=True,
        findings="在青年之家与本人及家长面谈,情况属实;已记录欺凌经过并告知可求助的渠道。",
    )
    task = services.case_refer(
        case=case,
        actor=liu,
        partner=a.orgs["海珠区教育局"],
        instructions="请与学校沟通,制止欺凌行为并告知处理结果。",
        due_at=_later(5),
    )
    services.coordination_complete(
        task=task,
        actor=a["haizhu_edu"],
        result="已约谈学校及相关学生家长,学校已制定防欺凌措施并安排班主任跟进。",
    )
    services.case_resolve(
        case=case,
        actor=liu,
        outcome=Case.Outcome.SOLVED,
        note="学校已介入处理,欺凌行为已停止,班主任每周跟进。",
    )
    services.case_give_feedback(
        case=case, actor=liu, message="学校已处理欺凌问题,如再遇到类似情况请随时联系我们。"
    )
    return services.case_rate(
        case=case,
        actor=chen,
        timeliness=5,
        attitude=5,
        outcome=5,
        solved=Rating.Solved.SOLVED,
        comment="谢谢刘老师,现在上学安心多了。",
    )


def story_unpaid_wages(a: Actors) -> Case:
    """Story 2: 李明's unpaid internship: escalated on breach, partly solved, disputed twice."""
    li, city_handler = a["li_ming"], a["gz_handler"]
    case = _submit(
        li,
        "employment",
        "实习单位拖欠实习工资",
        "我在一家公司实习了三个月,公司一直拖欠实习工资,多次催讨无果。",
    )
    # 白云区团委 let the accept clock run out: the sweep (the system) escalates it.
    services.case_escalate(case=case, actor=None, reason="sla_breach")
    services.case_accept(case=case, actor=city_handler)
    services.case_schedule_verification(
        case=case, actor=city_handler, station=a.orgs["广州市青年文化宫"]
    )
    services.case_record_verification(
        case=case,
        actor=a["wu_shegong"],
        confirmed=True,
        findings="核对了实习协议和考勤记录,拖欠情况属实。",
    )
    task = services.case_refer(
        case=case,
        actor=city_handler,
        partner=a.orgs["白云区人力资源和社会保障局"],
        instructions="请协助督促用人单位支付拖欠的实习工资。",
        due_at=_later(7),
    )
    services.coordination_complete(
        task=task, actor=a["baiyun_hrss"], result="经劳动监察约谈,单位已支付一半工资。"
    )
    for round_ in (1, 2):
        services.case_resolve(
            case=case,
            actor=city_handler,
            outcome=Case.Outcome.PARTLY,
            note="用人单位已支付一半实习工资,其余部分仍在协调。",
        )
        services.case_give_feedback(
            case=case, actor=city_handler, message="单位已支付一半工资,剩余部分我们继续跟进。"
        )
        # The second reopen escalates the case to the province.
        case = services.case_dispute(
            case=case,
            actor=li,
            reason="只拿回了一半工资,问题没有解决。" if round_ == 1 else "还是只有一半。",
        )
    return case


def story_child_hardship(a: Actors) -> Case:
    """Story 3: 王芳, 13, needs tutoring; delegated to 南沙青年之家, verified and resolved."""
    nansha, station_head = a["nansha_handler"], a["nansha_zhanzhang"]
    case = _submit(
        a["wang_fang"],
        "hardship",
        "放学后没人辅导功课",
        "爸爸妈妈下班很晚,放学后没有人辅导我做功课,希望有哥哥姐姐可以帮我。",
    )
    services.case_comment(
        case=case, actor=nansha, body="已电话联系监护人(母亲),监护人同意并完成书面授权。"
    )
    services.case_accept(case=case, actor=nansha)
    station = a.orgs["南沙青年之家"]
    services.case_delegate(
        case=case, actor=nansha, to_org=station, reason="就近安排线下核实和志愿者辅导。"
    )
    services.case_schedule_verification(case=case, actor=station_head, station=station)
    services.case_record_verification(
        case=case,
        actor=a["huang_shegong"],
        confirmed=True,
        findings="家访核实情况属实,孩子每天放学后独自在家。",
    )
    services.case_resolve(
        case=case,
        actor=station_head,
        outcome=Case.Outcome.SOLVED,
        note="已安排两名大学生志愿者每周三次到青年之家辅导功课。",
    )
    # The rating window is open now; the sweep auto-closes the case when it ends.
    return services.case_give_feedback(
        case=case, actor=station_head, message="志愿者辅导已经安排好,每周二、四、六下午在青年之家。"
    )


def story_exam_stress(a: Actors) -> Case:
    """Story 4: 张伟 at 中山大学; the 12355 desk helps, the youth is asked for more (paused)."""
    zhang, sysu = a["zhang_wei"], a["sysu_handler"]
    case = _submit(
        zhang,
        "psychological",
        "考试前压力很大,睡不着",
        "期末考试临近,最近总是失眠、焦虑,很难集中精力复习。",
        requested_org=a.orgs["中山大学团委"],
    )
    services.case_accept(case=case, actor=sysu)
    services.case_schedule_verification(case=case, actor=sysu, station=a.orgs["广州市青年文化宫"])
    services.case_record_verification(
        case=case, actor=a["wu_shegong"], confirmed=True, findings="面谈了解情况,建议专业心理咨询。"
    )
    services.case_refer(
        case=case,
        actor=sysu,
        partner=a.orgs["12355 青少年服务台"],
        instructions="请安排心理咨询师进行一次电话咨询。",
        due_at=_later(3),
    )
    return services.case_request_info(
        case=case, actor=sysu, question="方便接听咨询电话的时间段是什么时候?"
    )


def story_fake_request(a: Actors) -> Case:
    """Story 5: a copied request from a new account; reported as fake and rejected as abuse."""
    zhou = a["zhou_shuji"]
    case = _submit(
        a["new_user_0417"],
        "hardship",
        "急需生活费",
        "家里突然出事,急需一笔生活费,请尽快联系我。",
    )
    services.case_comment(
        case=case,
        actor=zhou,
        body="收到三条独立的虚假求助举报;经核对,内容与其他平台上的帖子完全相同。",
    )
    return services.case_reject(
        case=case,
        actor=zhou,
        reason=Case.RejectReason.ABUSE,
        note="经核实,该求助内容复制自其他平台,不予受理。",
    )


def story_station_visit(a: Actors) -> Case:
    """Offline verification with a booked visit: 何子轩 books an hour at 江南西, and the
    station proposes a time on another generated case for its youth to confirm."""
    from .services.stations import station_slots

    liu, youth = a["liu_laoshi"], a["he_zixuan"]
    station = a.orgs["海珠青年之家·江南西"]
    case = _submit(
        youth,
        "study",
        "想找人辅导数学",
        "初三数学跟不上,家里没有条件请家教,想问青年之家有没有志愿者辅导。",
        requested_org=a.orgs["海珠区团委"],
    )
    services.case_accept(case=case, actor=liu)
    services.case_schedule_verification(case=case, actor=liu, station=station)
    free = [slot.starts_at for slot in station_slots(station) if slot.free]
    services.visit_book(case=case, actor=youth, starts_at=free[0])
    return case


def story_phone_intake(a: Actors) -> Case:
    """Intake by phone: the 12355 desk enters a call for 小何, who has not claimed it yet."""
    return services.intake_enter(
        actor=a["hotline_12355"],
        desk=a.orgs["12355 青少年服务台"],
        channel=Case.Channel.PHONE,
        youth_name="小何",
        youth_phone="13800012355",
        birth_date=_birth_date(17, timezone.localdate()),
        consent_by="youth",
        category=Category.objects.get(code="study"),
        region_code="440105",
        title="12355 来电:想找学习辅导",
        description="来电青年说数学跟不上,希望附近的青年之家能安排志愿者辅导。",
    )


HANDOFF_SERVICE = "青年之声·问答"


def story_handoff(a: Actors) -> Case:
    """A hand-off: the Q&A service passes on a question its volunteers could not answer."""
    from .models import IntakeService
    from .services.intake import intake_service_create

    service = IntakeService.objects.filter(name=HANDOFF_SERVICE).first()
    if service is None:
        # The key is not kept anywhere: create one for real use with intake_services.
        service, _raw = intake_service_create(name=HANDOFF_SERVICE)
    case, _created = services.handoff_receive(
        service=service,
        external_id="qa-demo-0001",
        category=Category.objects.get(code="employment"),
        region_code="440111",
        title="问答转来:实习单位不签三方协议",
        description="问答平台的志愿者没能解决:实习单位拒绝签三方协议,青年希望线下获得帮助。",
        birth_date=_birth_date(21, timezone.localdate()),
        consent_by="youth",
    )
    return case


def rate_demo_visit(a: Actors, case: Case) -> None:
    """陈小雨 rates her visit to the 江南西 station (story 1), which feeds its score."""
    from .services.intake import visit_to_rate

    if visit_to_rate(case) is not None:
        services.visit_rate(case=case, actor=a["chen_xiaoyu"], stars=5, comment="社工很耐心。")


STORIES = [
    story_school_bullying,
    story_unpaid_wages,
    story_child_hardship,
    story_exam_stress,
    story_fake_request,
    story_phone_intake,
    story_handoff,
]

# How many generated cases end in each state: with the stories, every state is there.
GENERATED = [
    (CaseState.SUBMITTED, 5),
    (CaseState.ACCEPTED, 4),
    (CaseState.VERIFYING, 4),
    (CaseState.COORDINATING, 4),
    (CaseState.AWAITING_YOUTH, 3),
    (CaseState.RESOLVED, 3),
    (CaseState.FEEDBACK_GIVEN, 3),
    (CaseState.CLOSED, 6),
    (CaseState.REJECTED, 3),
    (CaseState.WITHDRAWN, 3),
]

REQUESTS = {
    "psychological": [
        ("和父母关系紧张,心情低落", "最近和父母经常吵架,心情很低落,不知道该怎么办。"),
        ("对未来感到迷茫", "毕业后不知道该做什么,每天都很焦虑。"),
    ],
    "legal": [
        ("租房押金不退", "退租时房东以各种理由扣下全部押金,想知道怎么维权。"),
        ("网购被骗", "在网上买东西付款后卖家失联,想咨询怎么处理。"),
    ],
    "study": [
        ("想转学但不知道流程", "因为搬家想转到附近的学校,不清楚需要准备哪些材料。"),
        ("数学成绩跟不上", "升上高中后数学一直跟不上,想找人辅导。"),
    ],
    "employment": [
        ("找不到合适的实习", "大三了还没有找到实习,希望了解有没有青年见习岗位。"),
        ("试用期被随意辞退", "试用期第二个月被公司口头辞退,没有任何补偿。"),
    ],
    "safety": [
        ("被陌生人在网上骚扰", "有陌生账号一直私信骚扰我,拉黑后又换号继续。"),
        ("放学路上有人跟踪", "最近放学路上好像总有人跟着我,有点害怕。"),
    ],
    "hardship": [
        ("家庭困难交不起学费", "家里经济困难,下学期的学费还没有着落。"),
        ("想申请助学金", "想了解有哪些助学金可以申请,怎么申请。"),
    ],
    "family": [
        ("父母离婚后不知道跟谁", "父母正在闹离婚,我很难过,不知道该怎么面对。"),
        ("和弟弟总是吵架", "家里经常因为弟弟的事情吵架,我觉得很委屈。"),
    ],
    "other": [
        ("想参加志愿服务", "想参加社区志愿服务,不知道去哪里报名。"),
        ("青年之家有什么活动", "想了解附近的青年之家有哪些周末活动。"),
    ],
}


class CaseDriver:
    """Moves one generated case, through the services, to the state it should end in."""

    def __init__(self, actors: Actors, rng: random.Random):
        self.a = actors
        self.rng = rng

    def run(self, case: Case, target: str) -> Case:
        step = getattr(self, f"to_{target}")
        return step(case)

    # Each ``to_<state>`` builds on the one before it.

    def to_submitted(self, case):
        if self.rng.random() < 0.4:
            # Nobody accepted in time: the sweep moved it up a level.
            case = services.case_escalate(case=case, actor=None, reason="sla_breach")
        return case

    def to_accepted(self, case):
        return services.case_accept(case=case, actor=self.a.handler(case))

    def to_verifying(self, case):
        case = self.to_accepted(case)
        station = (
            Organisation.objects.get_children(case.org)
            .filter(kind=K.STATION, is_active=True)
            .order_by("path")
            .first()
        )
        return services.case_schedule_verification(
            case=case, actor=self.a.handler(case), station=station
        )

    def to_coordinating(self, case, *, referral_done=False):
        case = self.to_verifying(case)
        case = services.case_record_verification(
            case=case,
            actor=self.a.verifier(case),
            confirmed=True,
            findings="线下面谈核实,情况属实。",
        )
        if self.rng.random() < 0.25:
            # A question on the way, answered: the clock paused and resumed.
            handler = self.a.handler(case)
            case = services.case_request_info(
                case=case, actor=handler, question="请补充一下事情发生的时间。"
            )
            case = services.case_provide_info(case=case, actor=case.youth, answer="上周五下午。")
        partner = (
            Organisation.objects.get_children(case.org)
            .filter(kind=K.PARTNER, is_active=True)
            .order_by("path")
            .first()
        )
        if partner is not None and (referral_done or self.rng.random() < 0.5):
            task = services.case_refer(
                case=case,
                actor=self.a.handler(case),
                partner=partner,
                instructions="请协助核实并处理,结果请在平台上反馈。",
                due_at=_later(self.rng.randint(3, 10)),
            )
            if referral_done:
                services.coordination_complete(
                    task=task, actor=self.a.at(partner.pk, P), result="已协助处理完毕。"
                )
                case = Case.objects.select_related("org", "category").get(pk=case.pk)
        return case

    def to_awaiting_youth(self, case):
        before = self.rng.choice([self.to_accepted, self.to_verifying, self.to_coordinating])
        case = before(case)
        return services.case_request_info(
            case=case, actor=self.a.handler(case), question="能否提供更多细节或相关材料?"
        )

    def to_resolved(self, case):
        case = self.to_coordinating(case, referral_done=True)
        outcome = self.rng.choices(
            [Case.Outcome.SOLVED, Case.Outcome.PARTLY, Case.Outcome.NOT_SOLVABLE], [7, 2, 1]
        )[0]
        return services.case_resolve(
            case=case, actor=self.a.handler(case), outcome=outcome, note="已协调相关部门处理。"
        )

    def to_feedback_given(self, case):
        case = self.to_resolved(case)
        return services.case_give_feedback(
            case=case, actor=self.a.handler(case), message="处理结果已告知,欢迎对我们的服务评价。"
        )

    def to_closed(self, case):
        case = self.to_feedback_given(case)
        solved = {
            Case.Outcome.SOLVED: Rating.Solved.SOLVED,
            Case.Outcome.PARTLY: Rating.Solved.PARTLY,
        }.get(case.outcome, Rating.Solved.NOT_SOLVED)
        return services.case_rate(
            case=case,
            actor=case.youth,
            timeliness=self.rng.randint(3, 5),
            attitude=self.rng.randint(4, 5),
            outcome=self.rng.randint(2, 5),
            solved=solved,
        )

    def to_rejected(self, case):
        if self.rng.random() < 0.5:
            case = self.to_verifying(case)
            return services.case_record_verification(
                case=case,
                actor=self.a.verifier(case),
                confirmed=False,
                findings="线下核实未能确认所述情况。",
            )
        reason = self.rng.choice([Case.RejectReason.DUPLICATE, Case.RejectReason.OUT_OF_SCOPE])
        return services.case_reject(case=case, actor=self.a.handler(case), reason=reason)

    def to_withdrawn(self, case):
        before = self.rng.choice([self.to_submitted, self.to_accepted, self.to_verifying])
        case = before(case)
        return services.case_withdraw(case=case, actor=case.youth, reason="问题已经自己解决了。")


def build_generated_cases(actors: Actors, rng: random.Random) -> list[Case]:
    youth = [actors[p.username] for p in OTHER_YOUTH]
    codes = sorted(REQUESTS)
    driver = CaseDriver(actors, rng)
    cases = []
    for target, count in GENERATED:
        for _ in range(count):
            person = rng.choice(youth)
            category = rng.choice(codes)
            title, description = rng.choice(REQUESTS[category])
            urgency = rng.choices(Case.Urgency.values, [2, 6, 2, 1])[0]
            case = _submit(person, category, title, description, urgency=urgency)
            case = driver.run(case, target)
            if case.state != target:  # a demo that lies about its spread is worse than none
                raise AssertionError(f"demo case {case} ended in {case.state}, not {target}")
            cases.append(case)
    return cases


def build_cases(log: Callable[[str], None] = print) -> list[Case]:
    """The stories (with the phone and hand-off intakes), then the generated cases
    (deterministic: Random(2026))."""
    actors = Actors()
    cases = []
    for story in STORIES:
        case = story(actors)
        log(f"  story {story.__name__.removeprefix('story_')}: {case.reference} ({case.state})")
        cases.append(case)
    rate_demo_visit(actors, cases[0])
    # Story 1's privacy trail: the handler's look at her case, and her own data export.
    services.record_personal_data_access(actor=actors["liu_laoshi"], case=cases[0])
    services.export_personal_data(youth=actors["chen_xiaoyu"], actor=actors["chen_xiaoyu"])
    cases += build_generated_cases(actors, random.Random(RANDOM_SEED))
    visit = story_station_visit(actors)
    log(f"  story station_visit: {visit.reference} (visit booked)")
    cases.append(visit)
    _station_proposes(actors, cases)
    return cases


def _station_proposes(a: Actors, cases: list[Case]) -> None:
    """A station proposes a visit time on the first generated case waiting at a station
    with a directory profile (its youth has yet to confirm)."""
    from .services.stations import station_slots

    for case in cases:
        if case.state != CaseState.VERIFYING or not case.station_id or case.appointments.exists():
            continue
        station = Organisation.objects.get(pk=case.station_id)
        if not StationProfile.objects.filter(station=station).exists():
            continue
        free = [slot.starts_at for slot in station_slots(station) if slot.free]
        services.visit_propose(case=case.pk, actor=a.verifier(case), starts_at=free[1])
        return


# --- everything -------------------------------------------------------------


def seed(*, password: str = DEFAULT_PASSWORD, log: Callable[[str], None] = print) -> dict:
    """Build the demo; safe to run again (nothing is duplicated)."""
    with transaction.atomic():
        orgs = ensure_tree(log)
        ensure_stations(orgs, log)
        users = ensure_people(orgs, password, log)
    if demo_cases_exist():
        log("Cases: the demo cases are already there; none added.")
        created = []
    else:
        log("Cases: building the demo stories and generated cases through the services ...")
        # All or nothing, so a failed run leaves no half-built demo behind to block the next.
        with transaction.atomic():
            created = build_cases(log)
        log(f"Cases: {len(created)} created.")
    return {"orgs": orgs, "users": users, "cases": created}
