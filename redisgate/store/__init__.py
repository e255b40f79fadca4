"""All SQL: the asyncpg pool, one module of queries per entity, and the migration runner."""
