const input: string = require('fs').readFileSync(0, 'utf8');
const [a, b]: number[] = input.trim().split(/\s+/).map(Number);
console.log(a - b);
