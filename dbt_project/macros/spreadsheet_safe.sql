{#- Free text in marts is exported to spreadsheets by BI users: a cell starting with = + - @,
    a tab or a carriage return is a formula to Excel/LibreOffice (`=cmd|' /C calc'!A0`,
    `=HYPERLINK(...)`). The OWASP rule: prefix such a value with a single quote so it stays
    text. Applied to every free-text column of marts, after masking (a masked `=...` is still
    a formula); numbers are not text and are never prefixed. Raw keeps the value unchanged. -#}
{% macro spreadsheet_safe(expr) -%}
    regexp_replace(({{ expr }})::text, '^([-=+@\t\r])', '''\1')
{%- endmacro %}
