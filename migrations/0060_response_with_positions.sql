-- response_with_positions: a response rendered before its events had positions, with
-- each position mark replaced by the position the event got (src/inventory/eventstore/
-- positions.py: 0x1e, the event's place in insertion order or 0 for the highest, 0x1e;
-- the byte cannot occur in JSON otherwise). The append stores it in the statement that
-- returns the positions, so the stored response is the one sent, byte for byte, and a
-- replay answers it as stored. Rows stored before this with `fill_positions` (0011) are
-- still filled at replay from the events they name.
CREATE FUNCTION response_with_positions(response bytea, positions bigint[])
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT coalesce(convert_to(string_agg(
           CASE WHEN piece.place % 2 = 1 THEN piece.text
                WHEN piece.text = '0' THEN (SELECT max(p) FROM unnest(positions) AS p)::text
                ELSE positions[piece.text::int]::text
           END, '' ORDER BY piece.place), 'UTF8'), ''::bytea)
FROM unnest(string_to_array(convert_from(response, 'UTF8'), E'\x1e'))
     WITH ORDINALITY AS piece(text, place)
$$;

REVOKE ALL ON FUNCTION response_with_positions FROM PUBLIC;
GRANT EXECUTE ON FUNCTION response_with_positions TO inventory_app;
