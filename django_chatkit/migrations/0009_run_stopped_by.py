"""Who stopped an answer, and when the stop was asked (django_chatkit.stops): the flag a
streaming worker reads, and what the run keeps once it is recorded cancelled."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_chatkit', '0008_review_queue_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='stop_requested_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='stop requested at'),
        ),
        migrations.AddField(
            model_name='run',
            name='stopped_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='stopped by'),
        ),
    ]
