"""The platform's service categories; sensitive ones are private everywhere."""

from django.db import migrations

CATEGORIES = [
    # code, name, English name, sensitive, difficulty weight
    ("psychological", "心理咨询(12355)", "Psychological counselling (12355)", True, 1.3),
    ("legal", "法律咨询", "Legal consultation", True, 1.2),
    ("study", "学业与学校", "Study and school", False, 1.0),
    ("employment", "就业与实习", "Employment and internships", False, 1.1),
    ("safety", "权益保护与安全", "Rights protection and safety", True, 1.4),
    ("hardship", "困难帮扶", "Hardship relief", False, 1.2),
    ("family", "家庭与情感", "Family and relationships", False, 1.0),
    ("other", "其他", "Other", False, 1.0),
]


def add(apps, schema_editor):
    Category = apps.get_model("casework", "Category")
    for order, (code, name, name_en, sensitive, weight) in enumerate(CATEGORIES):
        Category.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "sensitive": sensitive,
                "difficulty_weight": weight,
                "ordering": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("casework", "0002_timeline_append_only")]
    operations = [migrations.RunPython(add, migrations.RunPython.noop)]
