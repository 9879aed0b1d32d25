<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;

class UserController extends Controller
{
    public function show(Request $request, int $id)
    {
        return response()->json([
            'id' => $id,
            'name' => "user-{$id}",
            'query' => $request->query(),
        ]);
    }
}
