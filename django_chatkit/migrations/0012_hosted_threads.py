"""Hosted mode (issue #16): imported hosted threads, their upstream bookkeeping, and the journal
of deletions still to be done upstream."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_chatkit', '0011_hosted_user'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HostedDeletion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('thread_id', models.CharField(max_length=255, unique=True, verbose_name='thread id')),
                ('requested_at', models.DateTimeField(auto_now_add=True, verbose_name='requested at')),
                ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='last attempt at')),
                ('last_error', models.TextField(blank=True, default='', verbose_name='last error')),
            ],
            options={
                'verbose_name': 'pending upstream deletion',
                'verbose_name_plural': 'pending upstream deletions',
                'ordering': ['requested_at', 'id'],
            },
        ),
        migrations.AlterModelOptions(
            name='thread',
            options={'ordering': ['-created_at', '-id'], 'permissions': [('moderate_thread', 'Can lock, close, reopen and put on legal hold'), ('export_thread', 'Can export threads'), ('import_hosted', 'Can import hosted conversations from OpenAI')], 'verbose_name': 'thread', 'verbose_name_plural': 'threads'},
        ),
        migrations.AddField(
            model_name='thread',
            name='source',
            field=models.CharField(choices=[('self', 'Self-hosted'), ('hosted', 'Hosted by OpenAI')], db_default='self', default='self', max_length=16, verbose_name='source'),
        ),
        migrations.AddField(
            model_name='thread',
            name='upstream_cursor',
            field=models.CharField(blank=True, db_default='', default='', max_length=255, verbose_name='upstream cursor'),
        ),
        migrations.AddField(
            model_name='thread',
            name='upstream_deleted_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='deleted upstream at'),
        ),
        migrations.AddField(
            model_name='thread',
            name='upstream_updated_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='upstream activity at'),
        ),
        migrations.AddIndex(
            model_name='thread',
            index=models.Index(condition=models.Q(('source', 'hosted')), fields=['updated_at'], name='chatkit_thread_hosted'),
        ),
    ]
