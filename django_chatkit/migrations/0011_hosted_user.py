"""Hosted mode (issue #16): each owner's identifier in OpenAI's hosted ChatKit."""

import django_chatkit.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_chatkit', '0010_thread_takeover'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HostedUser',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('anonymous_key', models.CharField(blank=True, default='', max_length=64, verbose_name='anonymous key')),
                ('upstream_user', models.CharField(max_length=64, unique=True, verbose_name='upstream user')),
                ('owner_key', models.CharField(max_length=128, unique=True, verbose_name='owner')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('last_session_at', models.DateTimeField(blank=True, null=True, verbose_name='last session at')),
                ('last_imported_at', models.DateTimeField(blank=True, null=True, verbose_name='last imported at')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django_chatkit.deletion.CASCADE_OWNED, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'verbose_name': 'hosted user',
                'verbose_name_plural': 'hosted users',
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('anonymous_key', ''), ('user__isnull', False)), models.Q(('user__isnull', True), models.Q(('anonymous_key', ''), _negated=True)), _connector='OR'), name='chatkit_hosteduser_one_owner')],
            },
        ),
    ]
