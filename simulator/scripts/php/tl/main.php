<?php
$spins = 0;
while (true) {
    $spins++;
}
