"""Mastering a book's chapters for where they are going: profiles (``profiles``), a true-peak
limiter (``limiter``), room tone (``roomtone``), block-by-block mastering of a chapter file
(``master``), encoders (``encode``: MP3, M4B), the ACX checker on encoded files (``acx``) and
the EPUB 3 read-along writer (``readalong``), sentence times in a section's audio (``sync``) and
a book's synthesized sections into the finished audiobook (``render``)."""
