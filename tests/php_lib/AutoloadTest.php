<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;

/**
 * autoload.php in fresh PHP processes: idempotent, and the PSR-15 fallback
 * declarations are used only when no other package provides the interfaces.
 */
final class AutoloadTest extends TestCase
{
    private const AUTOLOAD = __DIR__ . '/../../trio_runner/php/autoload.php';

    private static function php(string $code): string
    {
        $proc = proc_open(
            [PHP_BINARY, '-d', 'display_errors=stderr', '-d', 'error_reporting=-1', '-r', $code],
            [1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes,
        );
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $code = proc_close($proc);
        self::assertSame(0, $code, "php exited $code; stderr:\n$err");
        self::assertSame('', $err);

        return (string) $out;
    }

    public function testRequiringTwiceThroughDifferentPathsIsHarmless(): void
    {
        $path = var_export(realpath(self::AUTOLOAD), true);
        $other = var_export(dirname(realpath(self::AUTOLOAD)) . '/./autoload.php', true);
        $out = self::php("require $path; require $other; require $path;"
            . ' echo count(spl_autoload_functions()), " ", class_exists("TrioRunner\\\\Frame") ? "ok" : "missing";');

        self::assertSame('2 ok', $out);
    }

    public function testFallbackPsr15InterfacesWhenNoPackageHasThem(): void
    {
        $path = var_export(realpath(self::AUTOLOAD), true);
        $out = self::php("require $path;"
            . ' foreach (["RequestHandlerInterface", "MiddlewareInterface"] as $n) {'
            . ' $r = new ReflectionClass("Psr\\\\Http\\\\Server\\\\$n");'
            . ' echo $r->isInterface() ? "interface " : "no ",'
            . ' substr($r->getFileName(), strlen(TRIO_RUNNER_PHP_DIR)), "\n"; }');

        self::assertSame(
            "interface /fallback/Psr/Http/Server/RequestHandlerInterface.php\n"
            . "interface /fallback/Psr/Http/Server/MiddlewareInterface.php\n",
            $out,
        );
    }

    /** @return iterable<string, array{bool}> */
    public static function loaderOrder(): iterable
    {
        yield 'package loader registered after ours' => [false];
        yield 'package loader registered before ours' => [true];
    }

    /** @dataProvider loaderOrder */
    public function testARealPackageAlwaysWins(bool $packageFirst): void
    {
        $dir = sys_get_temp_dir() . '/trio-psr15-' . getmypid();
        @mkdir($dir);
        file_put_contents(
            "$dir/Handler.php",
            "<?php namespace Psr\\Http\\Server; interface RequestHandlerInterface"
            . " { public function handle(\\Psr\\Http\\Message\\ServerRequestInterface \$r):"
            . " \\Psr\\Http\\Message\\ResponseInterface; }",
        );
        try {
            $path = var_export(realpath(self::AUTOLOAD), true);
            $file = var_export("$dir/Handler.php", true);
            $name = var_export('Psr\\Http\\Server\\RequestHandlerInterface', true);
            $package = "spl_autoload_register(function (\$c) { if (\$c === $name) require $file; });";
            $code = $packageFirst ? "$package require $path;" : "require $path; $package";
            $out = self::php($code . " echo (new ReflectionClass($name))->getFileName();");

            self::assertSame("$dir/Handler.php", $out);
        } finally {
            @unlink("$dir/Handler.php");
            @rmdir($dir);
        }
    }

    public function testExamplesAndLibraryPassLint(): void
    {
        $files = array_merge(
            glob(__DIR__ . '/../../trio_runner/php/src/*.php'),
            glob(__DIR__ . '/../../trio_runner/php/src/*/*.php'),
            glob(__DIR__ . '/../../trio_runner/php/src/*/*/*.php'),
            glob(__DIR__ . '/../../trio_runner/php/fallback/Psr/Http/Server/*.php'),
            glob(__DIR__ . '/../../examples/{hello,psr15,slim,dump}/*.php', GLOB_BRACE),
        );
        self::assertGreaterThan(20, count($files));
        foreach ($files as $file) {
            exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg($file) . ' 2>&1', $output, $code);
            self::assertSame(0, $code, implode("\n", $output));
        }
    }
}
