package io.moescore.report;

/** Escaping for text placed in HTML and SVG. */
public final class Html {
    private Html() {
    }

    /**
     * The start of a self-contained report page: the document head with the reports' inline CSS (tables, charts),
     * the body opened and {@code title} as its heading.
     */
    public static String pageStart(String title) {
        return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape(title)
                + "</title>\n<style>body{font-family:sans-serif;margin:20px;color:#222}"
                + "table{border-collapse:collapse;font-size:12px}"
                + "th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}"
                + "th{background:#eee}.chart{margin:16px 0;overflow-x:auto}</style></head><body>\n<h1>"
                + escape(title) + "</h1>\n";
    }

    public static String escape(String s) {
        if (s == null) {
            return "";
        }
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
