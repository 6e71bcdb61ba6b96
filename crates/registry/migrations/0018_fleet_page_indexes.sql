-- What the console's fleet page reads on every scroll, without a scan of
-- the tenants table at 100,000 rows: the status counts (GROUP BY status),
-- the template filter's choices, and the default order (worst first, then
-- slug) walked in index order, so a deep offset steps over index entries
-- rather than sorting the fleet. The expression is the one `page.rs`
-- orders by (`attention_order`), written the same way.
CREATE INDEX tenants_status ON tenants (status);
CREATE INDEX tenants_template ON tenants (template, template_version);
CREATE INDEX tenants_attention ON tenants (
    (CASE status WHEN 'failed' THEN 0 WHEN 'customized' THEN 1
                 WHEN 'outdated' THEN 2 WHEN 'unknown' THEN 3 ELSE 4 END),
    slug
);
