-- New instances persist their data unless created with "persistence": false (docs/durability.md).
-- The control API always writes the column, so this default only serves rows inserted by hand;
-- it is changed to say the same thing. Existing rows keep what they were created with: turning
-- persistence on is the owner's choice (PATCH .../instances/{id} {"persistence": true}).
ALTER TABLE instances ALTER COLUMN persistence SET DEFAULT true;
