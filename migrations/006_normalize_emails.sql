-- Emails are stored normalised (control/emails.py): NFKC, domain in lower case, no invisible
-- characters. Rows written before that are brought to the same form here, so the owner of
-- `admin@Example.com` in fullwidth letters logs in as `admin@example.com` and nobody can register that
-- spelling again. A row whose normal form would collide with another account's (two
-- look-alike accounts already exist) is left as it is, for an operator to resolve: merging
-- accounts is not something a migration may guess.

WITH cleaned AS (
    SELECT id,
           normalize(regexp_replace(email, '[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\uFEFF]', '', 'g'), NFKC) AS e
    FROM users
), normal AS (
    SELECT id,
           substring(e FROM '^(.*)@[^@]*$') || '@' ||
           rtrim(lower(substring(e FROM '@([^@]*)$')), '.') AS email
    FROM cleaned
    WHERE e LIKE '%@%'
)
UPDATE users u SET email = n.email, updated_at = now()
FROM normal n
WHERE u.id = n.id
  AND u.email <> n.email
  AND NOT EXISTS (
      SELECT 1 FROM users o WHERE o.id <> u.id AND lower(o.email) = lower(n.email)
  )
  AND (SELECT count(*) FROM normal m WHERE lower(m.email) = lower(n.email)) = 1;
