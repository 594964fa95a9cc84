"""factory_boy factories; the organisation tree is built through treebeard's API."""

import datetime

import factory
from factory.django import DjangoModelFactory

from casework.models import Category, Membership, Organisation, User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Sequence(lambda n: f"测试用户{n}")
    # An adult unless a test says otherwise: the request form needs a known age.
    birth_date = factory.LazyFunction(lambda: datetime.date.today().replace(year=2000))
    password = factory.django.Password("pass-1234")


class OrganisationFactory(DjangoModelFactory):
    """``parent=None`` makes a root; otherwise the node is added under ``parent``."""

    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"组织{n}")
    level = Organisation.Level.PROVINCE
    kind = Organisation.Kind.LEAGUE
    region_code = "440000"
    capacity = 100

    @classmethod
    def _create(cls, model_class, *args, parent=None, categories=None, **kwargs):
        node = model_class(**kwargs)
        manager = model_class.objects
        node = (
            manager.add_child(parent, instance=node) if parent else manager.add_root(instance=node)
        )
        codes = Category.objects.all() if categories is None else categories
        node.categories.set(codes)
        return node


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Membership.Role.HANDLER
