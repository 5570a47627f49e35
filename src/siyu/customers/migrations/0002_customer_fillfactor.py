from django.db import migrations


def set_fillfactor(apps, schema_editor):
    # Room on each page lets PostgreSQL update last_seen_at in place (a HOT update,
    # no index writes): event ingestion touches customers constantly.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE customers_customer SET (fillfactor = 80)")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(set_fillfactor, migrations.RunPython.noop)]
