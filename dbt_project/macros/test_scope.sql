{#- Which rows a data test reads. On an incremental run, a test of an incremental model checks
    the rows its current build wrote (`_written_xid` at or above the build's start in
    intermediate.model_builds; indexed): those are the rows the run could have broken, and the
    others passed when they were written. A full refresh, or
    `--vars '{test_all_rows: true}'` (the nightly full check), tests every row. Other
    relations (tables rebuilt whole, views, seeds) are always tested whole. A test's own
    `where` config applies in both cases. -#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- if latest_build_only(relation) -%}
        {%- do conditions.append('_written_xid >= ' ~ registered_build(relation)) -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ')
                      ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro latest_build_only(relation) -%}
    {%- if not execute or flags.FULL_REFRESH or var('test_all_rows', false) -%}
        {%- do return(false) -%}
    {%- endif -%}
    {#- the model's own node by its id (no model here has an alias) instead of a walk over
        every node of the graph for each test; the walk stays for anything else -#}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ relation.identifier) -%}
    {%- if node and node.schema | lower == relation.schema | lower -%}
        {%- do return(node.config.materialized == 'incremental') -%}
    {%- endif -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model'
            and node.config.materialized == 'incremental'
            and (node.alias or node.name) | lower == relation.identifier | lower
            and node.schema | lower == relation.schema | lower -%}
            {%- do return(true) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do return(false) -%}
{%- endmacro %}
