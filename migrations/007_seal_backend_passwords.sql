-- Backend passwords are stored sealed (AES-256-GCM, store/sealing.py) from now on. The key
-- is not in the database, so this migration cannot seal the rows it finds: it marks them
-- `plain:` instead, which the store still reads, and the control plane seals every marked
-- row when it starts (or `redisgate secrets reseal` does). Marking keeps the formats apart:
-- a value that is neither sealed nor marked was edited by hand and is refused.
-- Nothing is sealed before this file is applied, so every value found is plain.
UPDATE instances SET backend_password = 'plain:' || backend_password
WHERE backend_password IS NOT NULL;
UPDATE backend_servers SET password = 'plain:' || password WHERE password IS NOT NULL;
