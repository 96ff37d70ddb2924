"""Takeover (issue #15): a thread taken over by staff, and the staff author of a reply."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_chatkit', '0009_run_stopped_by'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='thread',
            name='taken_over_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='taken over at'),
        ),
        migrations.AddField(
            model_name='thread',
            name='taken_over_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='taken over by'),
        ),
        migrations.AddField(
            model_name='threaditem',
            name='staff_author',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='staff author'),
        ),
        migrations.AddIndex(
            model_name='threaditem',
            index=models.Index(condition=models.Q(('staff_author__isnull', False)), fields=['staff_author'], name='chatkit_item_staff_author'),
        ),
    ]
