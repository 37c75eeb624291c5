n = int(input())
# Any two non-negative numbers that add up to n are right; this program picks its own.
print(n // 3, n - n // 3)
