"""An index lives in its table's schema: the migrator must look it up (and repair or drop it) there."""

from golive.services.migrator.statements import lint


def test_an_index_on_a_schema_qualified_table_is_named_in_that_schema():
    linted = lint("CREATE INDEX CONCURRENTLY idx_users_email_signup ON auth.users(email)", "users_email")
    assert linted.statement.index == "auth.idx_users_email_signup"


def test_an_index_on_an_unqualified_table_keeps_its_unqualified_name():
    linted = lint("CREATE INDEX CONCURRENTLY idx_stripe_events_created ON stripe_events(created_at)", "created")
    assert linted.statement.index == "idx_stripe_events_created"
