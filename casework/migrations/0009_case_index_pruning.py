# Written by hand (helper J): drops Case indexes no query uses. Every sweep UPDATE of a
# case rewrites each of its indexes (the moved columns rule out HOT updates); see
# docs/performance.md for the queries each remaining index serves.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("casework", "0008_scores"),
    ]

    operations = [
        migrations.AlterField(
            model_name="case",
            name="youth",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to=settings.AUTH_USER_MODEL,
                verbose_name="youth",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="category",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to="casework.category",
                verbose_name="category",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="region_code",
            field=models.CharField(max_length=12, verbose_name="region code"),
        ),
        migrations.AlterField(
            model_name="case",
            name="requested_org",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="casework.organisation",
                verbose_name="organisation named by the youth",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="org",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to="casework.organisation",
                verbose_name="handling organisation",
            ),
        ),
    ]
