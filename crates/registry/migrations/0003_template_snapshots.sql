-- The measured canonical model of each template version (JSON), so a
-- tenant can be diffed against its template without re-measuring.
ALTER TABLE template_versions ADD COLUMN schema_json TEXT;
